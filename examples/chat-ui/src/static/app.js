// The chat page: plain DOM, no framework. It talks only to its own Worker (/api/...), which
// forwards to chat-store (see ../worker.js).

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const LOAD_OLDER_WITHIN_PX = 300; // start fetching the previous page this close to the top
const LOAD_MORE_CONVERSATIONS_WITHIN_PX = 200;
const SEND_ATTEMPTS = 5;
const RETRY_CAP_MS = 8000;
const RETRYABLE = new Set([429, 502, 503, 504]);
const AUTO_TITLE_LENGTH = 60;

const $ = (id) => document.getElementById(id);
const els = {
  conversations: $("conversations"),
  conversationsStatus: $("conversations-status"),
  newConversation: $("new-conversation"),
  whoami: $("whoami"),
  title: $("chat-title"),
  count: $("chat-count"),
  rename: $("rename"),
  messages: $("messages"),
  historyStatus: $("history-status"),
  list: $("message-list"),
  empty: $("empty"),
  error: $("error"),
  composer: $("composer"),
  draft: $("draft"),
  send: $("send"),
};

const state = {
  me: null,
  sidebar: { items: [], cursor: null, done: false, loading: false, generation: 0 },
  // The conversation shown: {id, title, cursor, done, loading, byId: Map<id, li>, isNew, named}
  chat: null,
};

// -- helpers --------------------------------------------------------------------------------

// A ULID made here, so a send that is retried after a lost answer reuses its id and
// chat-store stores it exactly once (an identical replay answers 200 with the stored message).
function ulid(nowMs = Date.now()) {
  const random = crypto.getRandomValues(new Uint8Array(10));
  let time = nowMs;
  let out = "";
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD[time % 32] + out;
    time = Math.floor(time / 32);
  }
  let bits = 0;
  let value = 0;
  for (const byte of random) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += CROCKFORD[(value >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }
}

async function api(path, { method = "GET", body } = {}) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text.slice(0, 200) };
  }
  if (!response.ok) {
    throw new ApiError(response.status, data, response.headers.get("Retry-After"));
  }
  return { status: response.status, data };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Retries what may not have happened (network errors, 429, 5xx gateways) with bounded backoff
// that honours Retry-After; safe for creates because the id is the client's.
async function withRetries(call) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      const retryable = !(error instanceof ApiError) || RETRYABLE.has(error.status);
      if (!retryable || attempt >= SEND_ATTEMPTS) throw error;
      const hinted = Number(error instanceof ApiError ? error.retryAfter : NaN) * 1000;
      const backoff = Math.min(RETRY_CAP_MS, 250 * 2 ** attempt) * (0.5 + Math.random() / 2);
      await sleep(Number.isFinite(hinted) && hinted > 0 ? Math.min(hinted, RETRY_CAP_MS) : backoff);
    }
  }
}

function showError(error) {
  const message = error instanceof ApiError
    ? `${error.problem?.title || "Error"} (${error.status}): ${error.message}`
    : `Network error: ${error.message}`;
  els.error.textContent = message;
  els.error.hidden = false;
}

function clearError() {
  els.error.hidden = true;
  els.error.textContent = "";
}

const encode = encodeURIComponent;

function formatTime(ms, { short = false } = {}) {
  const date = new Date(ms);
  const now = new Date();
  const sameDay = date.toDateString() === now.toDateString();
  if (short) {
    return sameDay
      ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
      : date.toLocaleDateString([], { month: "short", day: "numeric" });
  }
  return date.toLocaleString([], { dateStyle: sameDay ? undefined : "medium", timeStyle: "short" });
}

function conversationLabel(conversation) {
  if (conversation?.title) return conversation.title;
  return conversation?.id ?? "New conversation";
}

// chat-store's listing order: by timestamp, ties by member ("chat:{id}") bytes.
function before(a, b) {
  const ta = Number(a.dataset.timestamp);
  const tb = Number(b.dataset.timestamp);
  return ta !== tb ? ta < tb : a.dataset.id < b.dataset.id;
}

// -- sidebar --------------------------------------------------------------------------------

function renderSidebar() {
  const items = [...state.sidebar.items];
  const chat = state.chat;
  if (chat && chat.isNew && !items.some((c) => c.id === chat.id)) {
    items.unshift({ id: chat.id, draft: true });
  }
  const fragment = document.createDocumentFragment();
  for (const conversation of items) {
    const li = document.createElement("li");
    li.className = "conversation";
    li.dataset.id = conversation.id;
    li.setAttribute("role", "option");
    li.setAttribute("aria-selected", String(chat?.id === conversation.id));
    const title = document.createElement("span");
    title.className = "title";
    title.textContent = conversation.draft ? "New conversation" : conversationLabel(conversation);
    const time = document.createElement("span");
    time.className = "time";
    const preview = document.createElement("span");
    preview.className = "preview";
    if (conversation.last_message) {
      time.textContent = formatTime(conversation.last_message_at, { short: true });
      const last = conversation.last_message;
      const who = last.sender.id === state.me.user_id ? "You" : (last.sender.name || last.sender.id);
      preview.textContent = `${who}: ${last.preview}`;
    } else {
      preview.textContent = "No messages yet";
    }
    li.append(title, time, preview);
    li.addEventListener("click", () => openConversation(conversation.id));
    fragment.append(li);
  }
  els.conversations.replaceChildren(fragment);
  els.conversations.dataset.loading = String(state.sidebar.loading);
  els.conversationsStatus.textContent = state.sidebar.loading
    ? "Loading…"
    : items.length === 0 ? "No conversations yet" : "";
}

async function loadConversations({ reset = false } = {}) {
  const sidebar = state.sidebar;
  if (reset) {
    sidebar.generation += 1;
    sidebar.cursor = null;
    sidebar.done = false;
    sidebar.loading = false;
  }
  if (sidebar.loading || sidebar.done) return;
  const generation = sidebar.generation;
  sidebar.loading = true;
  els.conversations.dataset.loading = "true";
  try {
    const query = sidebar.cursor ? `?cursor=${encode(sidebar.cursor)}` : "";
    const { data } = await withRetries(() => api(`/api/conversations${query}`));
    if (generation !== sidebar.generation) return;
    sidebar.items = reset ? data.conversations : [...sidebar.items, ...data.conversations];
    sidebar.cursor = data.next_cursor;
    sidebar.done = data.next_cursor === null;
  } catch (error) {
    showError(error);
  } finally {
    if (generation === sidebar.generation) sidebar.loading = false;
    renderSidebar();
  }
}

els.conversations.addEventListener("scroll", () => {
  const list = els.conversations;
  if (list.scrollHeight - list.scrollTop - list.clientHeight < LOAD_MORE_CONVERSATIONS_WITHIN_PX) {
    loadConversations();
  }
});

// -- messages -------------------------------------------------------------------------------

function messageElement(message, { pending = false } = {}) {
  const li = document.createElement("li");
  li.className = "message";
  li.dataset.id = message.id;
  li.dataset.timestamp = String(message.timestamp ?? Number.MAX_SAFE_INTEGER);
  fillMessage(li, message, { pending });
  return li;
}

function fillMessage(li, message, { pending = false } = {}) {
  const mine = message.sender.id === state.me.user_id;
  const own = message.user_id === state.me.user_id; // what a user token may edit or delete
  li.classList.toggle("mine", mine);
  li.classList.toggle("pending", pending);
  li.classList.remove("failed");
  if (message.timestamp !== undefined) li.dataset.timestamp = String(message.timestamp);
  li.message = message;

  const bubble = document.createElement("div");
  bubble.className = "bubble";
  bubble.textContent = message.content;
  const meta = document.createElement("div");
  meta.className = "meta";
  const who = document.createElement("span");
  who.className = "sender";
  who.textContent = mine ? "You" : (message.sender.name || message.sender.id);
  const when = document.createElement("time");
  if (message.timestamp !== undefined) {
    when.dateTime = new Date(message.timestamp).toISOString();
    when.textContent = formatTime(message.timestamp);
  } else {
    when.textContent = "sending…";
  }
  meta.append(who, when);
  if (message.edited_at) {
    const edited = document.createElement("span");
    edited.className = "edited";
    edited.textContent = "(edited)";
    meta.append(edited);
  }
  if (own && !pending) {
    const actions = document.createElement("span");
    actions.className = "actions";
    actions.append(
      button("Edit", "link edit", () => startEdit(li)),
      button("Delete", "link danger delete", () => confirmDelete(li, actions)),
    );
    meta.append(actions);
  }
  li.replaceChildren(bubble, meta);
}

function button(label, className, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

function updateEmpty() {
  els.empty.hidden = !(state.chat && state.chat.done && state.chat.byId.size === 0);
}

function setHistoryStatus() {
  const chat = state.chat;
  els.messages.dataset.loading = String(Boolean(chat?.loading));
  els.messages.dataset.complete = String(Boolean(chat?.done));
  if (!chat) {
    els.historyStatus.textContent = "";
  } else if (chat.loading) {
    els.historyStatus.textContent = "Loading older messages…";
  } else if (chat.done) {
    els.historyStatus.textContent = chat.byId.size ? "Beginning of the conversation" : "";
  } else {
    els.historyStatus.textContent = "";
  }
  updateEmpty();
}

// Inserts one listing page (newest first, all older than what is shown) above the current
// messages, skipping any already shown, and keeps what the reader sees where it was.
function prependPage(messages) {
  const container = els.messages;
  const heightBefore = container.scrollHeight;
  const fragment = document.createDocumentFragment();
  for (const message of [...messages].reverse()) {
    if (state.chat.byId.has(message.id)) continue;
    const li = messageElement(message);
    state.chat.byId.set(message.id, li);
    fragment.append(li);
  }
  els.list.prepend(fragment);
  container.scrollTop += container.scrollHeight - heightBefore;
}

// Places a message (new, or whose timestamp is now known) in listing order; nearly always at
// the end, so the walk starts there.
function placeMessage(li) {
  let next = null;
  let node = els.list.lastElementChild;
  while (node && node !== li && before(li, node)) {
    next = node;
    node = node.previousElementSibling;
  }
  if (node === li) return;
  els.list.insertBefore(li, next);
}

function nearBottom() {
  const c = els.messages;
  return c.scrollHeight - c.scrollTop - c.clientHeight < 80;
}

function scrollToBottom() {
  els.messages.scrollTop = els.messages.scrollHeight;
}

async function loadOlder() {
  const chat = state.chat;
  if (!chat || chat.loading || chat.done) return;
  chat.loading = true;
  setHistoryStatus();
  try {
    const query = chat.cursor ? `?cursor=${encode(chat.cursor)}` : "";
    const { data } = await withRetries(
      () => api(`/api/conversations/${encode(chat.id)}/messages${query}`),
    );
    if (state.chat !== chat) return;
    const first = chat.cursor === null;
    prependPage(data.messages);
    if (first) scrollToBottom();
    chat.cursor = data.next_cursor;
    chat.done = data.next_cursor === null;
  } catch (error) {
    if (state.chat === chat) showError(error);
    return;
  } finally {
    chat.loading = false;
    if (state.chat === chat) setHistoryStatus();
  }
  // Still at the top (or the page does not fill the view): keep going.
  if (state.chat === chat && !chat.done && els.messages.scrollTop < LOAD_OLDER_WITHIN_PX) {
    loadOlder();
  }
}

els.messages.addEventListener("scroll", () => {
  if (els.messages.scrollTop < LOAD_OLDER_WITHIN_PX) loadOlder();
});

async function refreshHeader() {
  const chat = state.chat;
  if (!chat) return;
  try {
    const { data } = await api(`/api/conversations/${encode(chat.id)}`);
    if (state.chat !== chat) return;
    chat.title = data.conversation.title ?? null;
    chat.isNew = false;
    els.title.textContent = conversationLabel(data.conversation);
    const n = data.conversation.message_count;
    els.count.textContent = `${n} message${n === 1 ? "" : "s"}`;
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    // No message yet: a conversation exists from its first message on.
    if (state.chat !== chat) return;
    chat.isNew = true;
    els.title.textContent = "New conversation";
    els.count.textContent = "";
  }
}

async function openConversation(id, { isNew = false } = {}) {
  clearError();
  state.chat = {
    id, title: null, cursor: null, done: false, loading: false, byId: new Map(), isNew,
    named: false,
  };
  els.messages.dataset.conversation = id;
  history.replaceState(null, "", `#c=${encode(id)}`);
  els.list.replaceChildren();
  els.title.textContent = isNew ? "New conversation" : id;
  els.count.textContent = "";
  els.rename.hidden = false;
  els.draft.disabled = false;
  els.send.disabled = false;
  renderSidebar();
  setHistoryStatus();
  els.draft.focus();
  await Promise.all([loadOlder(), refreshHeader().catch(showError)]);
  renderSidebar();
}

// -- send, edit, delete ---------------------------------------------------------------------

async function send(content) {
  const chat = state.chat;
  const me = state.me;
  const message = {
    id: ulid(), user_id: me.user_id, conversation_id: chat.id,
    sender: { id: me.user_id, name: me.name, role: "user" }, content,
  };
  const li = messageElement(message, { pending: true });
  chat.byId.set(message.id, li);
  els.list.append(li);
  updateEmpty();
  scrollToBottom();
  await deliver(chat, li, message);
}

async function deliver(chat, li, message) {
  try {
    const { data } = await withRetries(() => api(
      `/api/conversations/${encode(chat.id)}/messages`,
      { method: "POST", body: { id: message.id, content: message.content } },
    ));
    clearError();
    // Claimed at once, so a second message sent meanwhile does not name it again.
    const nameIt = chat.isNew && !chat.title && !chat.named;
    if (nameIt) chat.named = true;
    fillMessage(li, data.message);
    placeMessage(li);
    if (nearBottom() || li === els.list.lastElementChild) scrollToBottom();
    if (nameIt) await autoTitle(chat, data.message.content);
    if (state.chat === chat) await refreshHeader().catch(showError);
    await loadConversations({ reset: true });
  } catch (error) {
    li.classList.remove("pending");
    li.classList.add("failed");
    const meta = li.querySelector(".meta");
    meta.querySelector("time").textContent = "not sent";
    meta.append(button("Retry", "link retry", () => {
      li.classList.remove("failed");
      li.classList.add("pending");
      meta.querySelector(".retry")?.remove();
      meta.querySelector("time").textContent = "sending…";
      deliver(chat, li, message); // the same id: at most one copy is ever stored
    }));
    showError(error);
  }
}

// A new conversation is named after its first message, as chat apps do.
async function autoTitle(chat, content) {
  const firstLine = content.split("\n").find((line) => line.trim()) ?? "";
  const title = [...firstLine.trim()].slice(0, AUTO_TITLE_LENGTH).join("");
  if (!title) return;
  try {
    await api(`/api/conversations/${encode(chat.id)}`, { method: "PATCH", body: { title } });
  } catch (error) {
    showError(error);
  }
}

function startEdit(li) {
  const message = li.message;
  const box = document.createElement("textarea");
  box.className = "edit-box";
  box.value = message.content;
  box.setAttribute("aria-label", "Edit message");
  const save = button("Save", "primary save", async () => {
    save.disabled = true;
    try {
      const { data } = await api(`/api/messages/${encode(message.id)}`, {
        method: "PATCH", body: { content: box.value },
      });
      clearError();
      fillMessage(li, data.message);
      loadConversations({ reset: true });
    } catch (error) {
      save.disabled = false;
      showError(error);
    }
  });
  const cancel = button("Cancel", "cancel", () => fillMessage(li, message));
  box.addEventListener("keydown", (event) => {
    if (event.key === "Escape") cancel.click();
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) save.click();
  });
  const actions = document.createElement("div");
  actions.className = "edit-actions";
  actions.append(cancel, save);
  li.replaceChildren(box, actions);
  box.focus();
}

function confirmDelete(li, actions) {
  const previous = [...actions.childNodes];
  const question = document.createElement("span");
  question.textContent = "Delete?";
  const yes = button("Yes, delete", "link danger confirm-delete", async () => {
    yes.disabled = true;
    try {
      await api(`/api/messages/${encode(li.dataset.id)}`, { method: "DELETE" });
      clearError();
      state.chat?.byId.delete(li.dataset.id);
      li.remove();
      updateEmpty();
      refreshHeader().catch(showError);
      loadConversations({ reset: true });
    } catch (error) {
      yes.disabled = false;
      showError(error);
    }
  });
  const no = button("Keep", "link", () => actions.replaceChildren(...previous));
  actions.replaceChildren(question, yes, no);
}

// -- wiring ---------------------------------------------------------------------------------

els.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const content = els.draft.value;
  if (!state.chat || !content.trim()) return;
  els.draft.value = "";
  send(content);
});

els.draft.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    els.composer.requestSubmit();
  }
});

els.newConversation.addEventListener("click", async () => {
  try {
    const { data } = await api("/api/conversations", { method: "POST" });
    await openConversation(data.id, { isNew: true });
  } catch (error) {
    showError(error);
  }
});

els.rename.addEventListener("click", async () => {
  const chat = state.chat;
  if (!chat) return;
  const title = prompt("Conversation title", chat.title ?? "");
  if (title === null || !title.trim()) return;
  try {
    await api(`/api/conversations/${encode(chat.id)}`, {
      method: "PATCH", body: { title: title.trim() },
    });
    await refreshHeader();
    await loadConversations({ reset: true });
  } catch (error) {
    showError(error);
  }
});

async function start() {
  try {
    const { data } = await api("/api/me");
    state.me = data;
  } catch (error) {
    showError(error);
    els.title.textContent = "The demo Worker is not available";
    return;
  }
  els.whoami.textContent = `Signed in as ${state.me.name} (${state.me.user_id}) · demo token, local only`;
  await loadConversations({ reset: true });
  if (state.chat) return; // the user already picked one (or started a new one) meanwhile
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("c");
  const first = state.sidebar.items[0]?.id;
  if (fromHash) await openConversation(fromHash);
  else if (first) await openConversation(first);
}

start();
