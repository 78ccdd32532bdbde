// pinsights dashboard: audience insights for a marketer, read from the server's own v5 API.
//
// The page is a client of the public API, like any other: it gets a token from /v5/oauth/token
// (or is given one), keeps it in sessionStorage only, and reads the same documents the SDK reads.
// Everything it shows is built with createElement/textContent: names come from the platform's
// data, so nothing the API returns is ever parsed as HTML. The view (account, audience, comparison,
// date) lives in the URL, so a view can be bookmarked and shared; documents are kept for the
// session, so switching audience costs one API call and switching back none.
"use strict";

(() => {
  const TOKEN_KEY = "pinsights.token";
  const API = "/v5";
  const AUDIENCES = [
    {
      type: "YOUR_TOTAL_AUDIENCE",
      label: "Your total audience",
      about: "people who saw or engaged with your content",
    },
    {
      type: "YOUR_ENGAGED_AUDIENCE",
      label: "Your engaged audience",
      about: "people who saved, clicked or otherwise engaged with your content",
    },
    {
      type: "PINTEREST_TOTAL_AUDIENCE",
      label: "Everyone on the platform",
      about: "every active person on the platform",
    },
  ];
  const AUDIENCE = new Map(AUDIENCES.map((audience) => [audience.type, audience]));
  const DIMENSIONS = [
    { key: "ages", title: "Age", heading: "Age", table: false },
    { key: "genders", title: "Gender", heading: "Gender", table: false },
    { key: "devices", title: "Device", heading: "Device", table: false },
    { key: "countries", title: "Countries", heading: "Country", table: true },
    { key: "metros", title: "Metros", heading: "Metro", table: true },
  ];
  const AGE_ORDER = ["18-24", "25-34", "35-44", "45-49", "50-54", "55-64", "65+", "unknown"];
  // Rows of a long table shown before "Show all".
  const TABLE_ROWS = 10;
  // Share of the audience an interest needs to be named in the summary's sentence.
  const HIGHLIGHT_MIN_SHARE = 0.05;
  // Categories shown before "Show all" (the rest have the smallest shares).
  const CATEGORY_ROWS = 12;
  const ACCOUNT_ID = /^\d{1,18}$/;
  // The account list is read 250 at a time (the API's largest page), at most this many pages:
  // 10,000 accounts in 40 requests. Beyond that, an account is found by typing its ID.
  const ACCOUNT_PAGE_SIZE = 250;
  const MAX_ACCOUNT_PAGES = 40;
  // Matches listed under the account field while typing; more are reached by typing more.
  const SHOWN_MATCHES = 50;
  const DATE = /^\d{4}-\d{2}-\d{2}$/;

  // --- formatting, exactly as the CLI prints (Python's format(): round half to even) -----------

  /** `value` with `digits` decimals, rounded like Python's format (ties to the even digit). */
  function fixed(value, digits) {
    const rounded = value.toFixed(digits); // ties go up here
    const exact = value.toFixed(100); // a double's exact decimal expansion
    const point = exact.indexOf(".");
    const rest = exact.slice(point + 1 + digits);
    if (!/^50*$/.test(rest)) return rounded;
    const truncated = exact.slice(0, digits > 0 ? point + 1 + digits : point);
    const last = Number(truncated[truncated.length - 1]);
    return last % 2 === 0 ? truncated : rounded;
  }
  /** A share (ratio) as a percentage with one decimal: `54.0%`. */
  const formatShare = (ratio) => `${fixed(ratio * 100, 1)}%`;
  /** An affinity index: `3.24x`. */
  const formatIndex = (index) => `${fixed(index, 2)}x`;
  const formatCount = (count) => count.toLocaleString("en-US");

  // --- DOM helpers: text only, never HTML ---------------------------------------------------------

  /** `h("td", {className: "x"}, "text", child)`: an element with properties and children. */
  function h(tag, properties, ...children) {
    const element = document.createElement(tag);
    for (const [name, value] of Object.entries(properties || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name.startsWith("aria-") || name.startsWith("data-") || name === "scope") {
        element.setAttribute(name, String(value));
      } else {
        element[name] = value;
      }
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      element.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return element;
  }
  const $ = (id) => document.getElementById(id);

  // --- the token -----------------------------------------------------------------------------------

  /** The claims of a pinsights token (a JWT), read without verifying: the server verifies. */
  function claimsOf(token) {
    try {
      const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
      const claims = JSON.parse(new TextDecoder().decode(bytes));
      return claims && typeof claims === "object" ? claims : {};
    } catch {
      return {};
    }
  }
  const session = {
    get token() {
      return sessionStorage.getItem(TOKEN_KEY);
    },
    set token(value) {
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      else sessionStorage.removeItem(TOKEN_KEY);
    },
  };
  function expired(claims) {
    return typeof claims.exp === "number" && claims.exp * 1000 <= Date.now();
  }

  // --- talking to the API ------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(sentence, status) {
      super(sentence);
      this.status = status;
    }
  }

  function retryAfter(response) {
    const seconds = Number.parseInt(response.headers.get("Retry-After") || "", 10);
    if (!Number.isFinite(seconds)) return "in a moment";
    if (seconds <= 1) return "in a second";
    if (seconds < 120) return `in ${seconds} seconds`;
    return `in ${Math.ceil(seconds / 60)} minutes`;
  }

  /** What went wrong, as a sentence a marketer can act on. */
  async function explain(response, context) {
    let code = null;
    try {
      code = (await response.json()).code;
    } catch {
      code = null;
    }
    switch (response.status) {
      case 400:
        return "The server did not accept this request. Reload the page and try again.";
      case 401:
        return context === "sign-in"
          ? "That client ID and secret do not match. Check both and try again."
          : "Your sign-in has expired or is no longer valid. Please sign in again.";
      case 403:
        return code === 3
          ? "This token is not allowed to read audience insights (it lacks the ads:read scope)."
          : `You may not read ad account ${context}, or it does not exist.`;
      case 404:
        return "There are no insights for this selection. Try another date or audience.";
      case 429:
        return `Too many requests for this client right now. Try again ${retryAfter(response)}.`;
      case 503:
        return `The server is busy or briefly unavailable. Try again ${retryAfter(response)}.`;
      default:
        return "The server ran into a problem. Try again; if it keeps happening, tell your pinsights administrator.";
    }
  }

  async function request(path, init, context) {
    let response;
    try {
      // No cookies are ever needed, and without credentials mode a 401 with a Basic challenge
      // (a wrong secret) is answered to this code instead of opening the browser's login box.
      response = await fetch(path, { ...init, credentials: "omit" });
    } catch {
      throw new ApiError("The server could not be reached. Check your connection and try again.", 0);
    }
    if (!response.ok) throw new ApiError(await explain(response, context), response.status);
    return response.json();
  }

  const documents = new Map(); // path -> Promise of the parsed JSON, for this sign-in

  /** GET an API path with the session's token; answers are kept for the session. */
  function get(path, context) {
    let answer = documents.get(path);
    if (!answer) {
      const headers = { Authorization: `Bearer ${session.token}`, Accept: "application/json" };
      answer = request(API + path, { headers }, context);
      documents.set(path, answer);
      answer.catch(() => documents.delete(path)); // an error is not remembered
    }
    return answer;
  }

  async function signIn(clientId, secret) {
    const credentials = new TextEncoder().encode(`${clientId}:${secret}`);
    const basic = btoa(String.fromCharCode(...credentials));
    const body = await request(
      `${API}/oauth/token`,
      {
        method: "POST",
        headers: {
          Authorization: `Basic ${basic}`,
          "Content-Type": "application/x-www-form-urlencoded",
        },
        body: "grant_type=client_credentials&scope=ads%3Aread",
      },
      "sign-in",
    );
    return body.access_token;
  }

  // --- the view and the URL ----------------------------------------------------------------------

  const view = { account: "", audience: AUDIENCES[1].type, compare: "", date: "" };

  function readUrl() {
    const params = new URLSearchParams(window.location.search);
    const account = params.get("account") || "";
    const audience = params.get("audience") || "";
    const compare = params.get("compare") || "";
    const date = params.get("date") || "";
    view.account = ACCOUNT_ID.test(account) ? account : "";
    view.audience = AUDIENCE.has(audience) ? audience : AUDIENCES[1].type;
    view.compare = AUDIENCE.has(compare) && compare !== view.audience ? compare : "";
    view.date = DATE.test(date) ? date : "";
  }

  function writeUrl(replace) {
    const params = new URLSearchParams();
    for (const name of ["account", "audience", "compare", "date"]) {
      if (view[name]) params.set(name, view[name]);
    }
    const url = `${window.location.pathname}?${params}`;
    if (url === `${window.location.pathname}${window.location.search}`) return;
    if (replace) window.history.replaceState(null, "", url);
    else window.history.pushState(null, "", url);
  }

  // --- screens -------------------------------------------------------------------------------------

  function showAlert(sentence) {
    const alert = $("alert");
    alert.textContent = sentence || "";
    alert.hidden = !sentence;
  }

  function setStatus(sentence) {
    $("status").textContent = sentence;
  }

  function showSignIn(sentence) {
    session.token = null;
    documents.clear();
    current = null;
    $("insights").hidden = true;
    $("report").hidden = true;
    $("summary").replaceChildren();
    $("categories").replaceChildren();
    $("demographics").replaceChildren();
    $("sign-out").hidden = true;
    $("who").textContent = "";
    $("signin").hidden = false;
    showAlert(sentence);
    $("client-id").focus();
  }

  async function showInsights() {
    const claims = claimsOf(session.token);
    const mine = ++generation;
    $("signin").hidden = true;
    $("insights").hidden = false;
    $("sign-out").hidden = false;
    $("who").textContent = claims.sub ? `Signed in as ${claims.sub}` : "Signed in";
    setUpAudiences();
    setBusy(true);
    setStatus("Loading your ad accounts…");
    try {
      await loadAccountList(claims);
    } catch (error) {
      // 401: back to signing in; 403: a token without ads:read, which can read nothing
      if (mine === generation) {
        setBusy(false);
        fail(error);
      }
      return;
    }
    if (mine !== generation) return;
    if (!view.account && accounts.list.length > 0) view.account = accounts.list[0].id;
    showAccount();
    loadAccount(true);
  }

  // --- the ad account field: a combobox that filters the token's accounts as one types -----------

  const accounts = {
    list: [], // {id, label, search} in the API's order (by id)
    byId: new Map(),
    complete: true, // false when there were more accounts than MAX_ACCOUNT_PAGES hold
    matches: [], // the accounts listed under the field now
    active: -1, // the highlighted one (keyboard), or -1
  };

  /** "Name (id)", or the id alone when the server knows no name. */
  const accountLabel = (id) => accounts.byId.get(id)?.label || id;

  /** The accounts the token can read, page by page from ``GET /v5/ad_accounts``. An answer
   *  other than 401 (a server without the operation, a rate limit) leaves the token's own list. */
  async function loadAccountList(claims) {
    const found = [];
    let complete = true;
    try {
      let bookmark = "";
      for (let page = 0; ; page++) {
        if (page === MAX_ACCOUNT_PAGES) {
          complete = false;
          break;
        }
        const query = new URLSearchParams({ page_size: String(ACCOUNT_PAGE_SIZE) });
        if (bookmark) query.set("bookmark", bookmark);
        const answer = await get(`/ad_accounts?${query}`, "");
        for (const item of answer.items || []) {
          if (item && ACCOUNT_ID.test(item.id)) found.push(item);
        }
        bookmark = typeof answer.bookmark === "string" ? answer.bookmark : "";
        if (!bookmark) break;
      }
    } catch (error) {
      if (error.status === 401 || error.status === 403) throw error;
      found.length = 0;
      for (const id of Array.isArray(claims.ad_accounts) ? claims.ad_accounts : []) {
        if (ACCOUNT_ID.test(id)) found.push({ id });
      }
    }
    accounts.list = found.map((item) => {
      const label = typeof item.name === "string" && item.name ? `${item.name} (${item.id})` : item.id;
      return { id: item.id, label, search: label.toLowerCase() };
    });
    accounts.byId = new Map(accounts.list.map((account) => [account.id, account]));
    accounts.complete = complete;
  }

  /** Show the chosen account in the field, and say what the field takes. */
  function showAccount() {
    $("account").value = view.account ? accountLabel(view.account) : "";
    $("account").title = $("account").value; // the whole label, where the field cuts it
    const count = accounts.list.length;
    $("account-help").textContent =
      count === 0
        ? "Type an ad account ID (digits)."
        : `${formatCount(count)}${accounts.complete ? "" : "+"} account${count === 1 ? "" : "s"}: type part of a name or an ID.`;
  }

  function matchesOf(text) {
    const wanted = text.trim().toLowerCase();
    const found = [];
    for (const account of accounts.list) {
      if (!wanted || account.search.includes(wanted)) found.push(account);
      if (found.length > SHOWN_MATCHES) break;
    }
    return found;
  }

  function openMatches(text) {
    const found = matchesOf(text);
    accounts.matches = found.slice(0, SHOWN_MATCHES);
    accounts.active = -1;
    const listbox = $("account-options");
    const items = accounts.matches.map((account, index) =>
      h(
        "li",
        { id: `account-option-${index}`, role: "option", "aria-selected": "false", "data-id": account.id },
        account.label,
      ),
    );
    if (found.length > SHOWN_MATCHES) {
      items.push(h("li", { className: "combo-more", "aria-hidden": "true" }, "More accounts match: keep typing."));
    } else if (found.length === 0 && accounts.list.length > 0) {
      items.push(h("li", { className: "combo-more", "aria-hidden": "true" }, "No ad account matches."));
    }
    listbox.replaceChildren(...items);
    const open = items.length > 0;
    listbox.hidden = !open;
    $("account").setAttribute("aria-expanded", String(open));
    $("account").removeAttribute("aria-activedescendant");
  }

  function closeMatches() {
    $("account-options").hidden = true;
    $("account").setAttribute("aria-expanded", "false");
    $("account").removeAttribute("aria-activedescendant");
    accounts.active = -1;
  }

  function highlight(index) {
    const options = $("account-options").querySelectorAll("[role=option]");
    if (options.length === 0) return;
    accounts.active = (index + options.length) % options.length;
    options.forEach((option, i) => option.setAttribute("aria-selected", String(i === accounts.active)));
    const option = options[accounts.active];
    $("account").setAttribute("aria-activedescendant", option.id);
    option.scrollIntoView({ block: "nearest" });
  }

  function pickAccount(id) {
    closeMatches();
    $("account").value = accountLabel(id);
    $("account").title = $("account").value;
    showAlert("");
    if (id === view.account && current) return;
    view.account = id;
    loadAccount(false);
  }

  /** Enter (or leaving the field changed): the highlighted match, an ID or "Name (ID)" as typed,
   *  else the first account whose name or ID contains the text. */
  function chooseAccount() {
    const value = $("account").value.trim();
    if (accounts.active >= 0 && !$("account-options").hidden) {
      pickAccount(accounts.matches[accounts.active].id);
      return;
    }
    const labelled = /\((\d{1,18})\)$/.exec(value);
    if (ACCOUNT_ID.test(value)) {
      pickAccount(value);
    } else if (labelled && accountLabel(labelled[1]) === value) {
      pickAccount(labelled[1]);
    } else if (value) {
      const found = matchesOf(value);
      if (found.length > 0) {
        pickAccount(found[0].id);
      } else {
        closeMatches();
        showAlert(`No ad account matches “${value}”. Type part of its name, or its ID (digits).`);
      }
    }
  }

  function setUpAccountField() {
    const field = $("account");
    field.addEventListener("input", () => openMatches(field.value));
    field.addEventListener("change", chooseAccount);
    // the shown account's label is selected on focus or click, so typing replaces it
    field.addEventListener("focus", () => field.select());
    field.addEventListener("click", () => {
      if (!$("account-options").hidden) return;
      if (field.value === accountLabel(view.account)) field.select();
      openMatches("");
    });
    field.addEventListener("keydown", (event) => {
      const open = !$("account-options").hidden;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (!open) openMatches(field.value === accountLabel(view.account) ? "" : field.value);
        highlight(accounts.active + (event.key === "ArrowDown" ? 1 : -1));
      } else if (event.key === "Escape" && open) {
        event.preventDefault();
        closeMatches();
        field.value = view.account ? accountLabel(view.account) : "";
      }
    });
    field.addEventListener("blur", () => {
      closeMatches();
      if (field.value.trim() === "" && view.account) field.value = accountLabel(view.account);
    });
    // mousedown, not click: the field keeps its focus, so the list is still there to be picked from
    $("account-options").addEventListener("mousedown", (event) => {
      event.preventDefault();
      const option = event.target.closest("[role=option]");
      if (option) pickAccount(option.dataset.id);
    });
  }

  function setUpAudiences() {
    $("audience").replaceChildren(
      ...AUDIENCES.map((a) => h("option", { value: a.type, selected: a.type === view.audience }, a.label)),
    );
    $("compare").replaceChildren(
      h("option", { value: "", selected: !view.compare }, "No comparison"),
      ...AUDIENCES.map((a) =>
        h(
          "option",
          { value: a.type, selected: a.type === view.compare, disabled: a.type === view.audience },
          a.label,
        ),
      ),
    );
  }

  function setUpDates(dates) {
    const options = dates.length
      ? dates.map((date) => h("option", { value: date }, date))
      : [h("option", { value: "" }, "Newest")];
    $("date").replaceChildren(...options);
    $("date").value = view.date;
  }

  // --- loading -------------------------------------------------------------------------------------

  let generation = 0; // a newer load makes an older one's answers moot
  let current = null; // what is shown: {account, date, primary, compare}

  /** The insights section is aria-busy while a load is under way (and assistive tech waits). */
  function setBusy(isBusy) {
    if (isBusy) $("insights").setAttribute("aria-busy", "true");
    else $("insights").removeAttribute("aria-busy");
  }

  async function loadAccount(replaceUrl) {
    const mine = ++generation;
    if (!view.account) {
      setBusy(false);
      setStatus("Type an ad account ID to see its audiences.");
      return;
    }
    setBusy(true);
    showAlert("");
    setStatus(`Loading ad account ${accountLabel(view.account)}…`);
    try {
      const definitions = await get(
        `/ad_accounts/${view.account}/insights/audiences`,
        view.account,
      );
      if (mine !== generation) return;
      const dates = [...new Set((definitions.items || []).map((item) => item.date))];
      if (!dates.includes(view.date)) view.date = dates[0] || "";
      setUpDates(dates);
      await loadView(replaceUrl, mine);
    } catch (error) {
      if (mine === generation) fail(error);
    } finally {
      if (mine === generation) setBusy(false);
    }
  }

  async function loadView(replaceUrl, mine = ++generation) {
    writeUrl(replaceUrl);
    setUpAudiences();
    showAlert("");
    setStatus("Loading…");
    setBusy(true);
    $("download").disabled = true;
    const insights = (type) => {
      const query = new URLSearchParams({ audience_insight_type: type });
      if (view.date) query.set("date", view.date);
      return get(`/ad_accounts/${view.account}/audience_insights?${query}`, view.account);
    };
    try {
      const [primary, compare] = await Promise.all([
        insights(view.audience),
        view.compare ? insights(view.compare) : null,
      ]);
      if (mine !== generation) return;
      current = { account: view.account, date: view.date, primary, compare };
      render(current);
      setStatus("");
      $("download").disabled = false;
    } catch (error) {
      if (mine === generation) fail(error);
    } finally {
      if (mine === generation) setBusy(false);
    }
  }

  function fail(error) {
    if (error.status === 401) {
      showSignIn(error.message);
      return;
    }
    current = null;
    $("report").hidden = true;
    $("download").disabled = true;
    setStatus("");
    showAlert(error.message || "Something went wrong. Reload the page and try again.");
  }

  // --- rendering -----------------------------------------------------------------------------------

  /** The audiences shown, each with its document: the chosen one, then the comparison. */
  function shown(state) {
    const list = [{ ...AUDIENCE.get(state.primary.type), document: state.primary, role: "primary" }];
    if (state.compare) {
      list.push({ ...AUDIENCE.get(state.compare.type), document: state.compare, role: "compare" });
    }
    return list;
  }

  function render(state) {
    const audiences = shown(state);
    renderSummary(audiences);
    renderCategories(audiences);
    renderDemographics(audiences);
    $("report").hidden = false;
  }

  function renderSummary(audiences) {
    const cards = audiences.map((audience) => {
      const doc = audience.document;
      const size = doc.size_is_upper_bound
        ? "fewer than 100 people"
        : `${formatCount(doc.size)} people`;
      return h(
        "div",
        { className: `card card-${audience.role}` },
        h("p", { className: "card-label" }, h("span", { className: `swatch swatch-${audience.role}`, "aria-hidden": "true" }), audience.label),
        h("p", { className: "card-size" }, size),
        h(
          "p",
          { className: "card-about" },
          `${capitalize(audience.about)} · snapshot of `,
          h("span", { className: "nowrap" }, doc.date),
        ),
        doc.size_is_upper_bound
          ? h(
              "p",
              { className: "card-note" },
              "Too few people to describe without risking identifying someone: interests and demographics appear once the audience reaches 100 people.",
            )
          : null,
      );
    });
    $("summary").classList.toggle("summary-compare", audiences.length > 1);
    $("summary").replaceChildren(...[...cards, highlights(audiences[0])].filter(Boolean));
  }

  /**
   * One sentence with what sets the audience apart: its highest affinity indexes among interests
   * of at least HIGHLIGHT_MIN_SHARE of it (a high index on a sliver of the audience is noise).
   */
  function highlights(audience) {
    const categories = audience.document.categories || [];
    if (categories.length === 0) return null;
    const distinctive = categories
      .filter((category) => category.index > 1.0 && category.ratio >= HIGHLIGHT_MIN_SHARE)
      .sort((a, b) => b.index - a.index || b.ratio - a.ratio)
      .slice(0, 3);
    const parts = [];
    const sentence = h("p", { className: "highlights" });
    if (distinctive.length > 0) {
      parts.push(`${audience.label} stands out for `);
      distinctive.forEach((category, i) => {
        if (i > 0) parts.push(i === distinctive.length - 1 ? " and " : ", ");
        parts.push(h("strong", {}, category.name), ` (${formatIndex(category.index)} as likely as average)`);
      });
      parts.push(". ");
    }
    const top = categories[0];
    parts.push(`Its largest interest is `, h("strong", {}, top.name), `, shared by ${formatShare(top.ratio)} of it.`);
    sentence.append(...parts.map((part) => (part instanceof Node ? part : document.createTextNode(part))));
    return sentence;
  }

  const capitalize = (text) => text.charAt(0).toUpperCase() + text.slice(1);

  /** Rows of several audiences' lists, joined on `key`: the first audience's order, then the rest. */
  function joinRows(lists) {
    const rows = new Map();
    lists.forEach((items, position) => {
      for (const item of items || []) {
        if (!rows.has(item.key)) rows.set(item.key, { key: item.key, name: item.name, values: [] });
        rows.get(item.key).values[position] = item;
      }
    });
    return [...rows.values()];
  }

  function emptyNote(audiences, what) {
    const small = audiences.every((audience) => audience.document.size_is_upper_bound);
    return h(
      "p",
      { className: "empty" },
      small
        ? `No ${what} are shown for audiences of fewer than 100 people.`
        : `No ${what} reach the privacy threshold for this audience.`,
    );
  }

  /**
   * One cell of bars: a bar and its share for each audience (with the audience named for readers).
   * Every bar is drawn on the same 0-100% scale, so lengths compare across tables too.
   */
  function shareCell(row, audiences) {
    return h(
      "td",
      { className: "share" },
      audiences.map((audience, i) => {
        const item = row.values[i];
        const width = item ? Math.max(0.5, item.ratio * 100) : 0;
        const bar = h("span", { className: `bar bar-${audience.role}`, "aria-hidden": "true" });
        bar.style.width = `${Math.min(width, 100)}%`;
        return h(
          "span",
          { className: "bar-line" },
          h("span", { className: "bar-track" }, bar),
          h(
            "span",
            { className: "value" },
            audiences.length > 1 ? h("span", { className: "visually-hidden" }, `${audience.label}: `) : null,
            h("span", { className: "number" }, item ? formatShare(item.ratio) : "–"),
          ),
        );
      }),
    );
  }

  function indexCell(row, audiences) {
    return h(
      "td",
      { className: "index" },
      audiences.map((audience, i) => {
        const item = row.values[i];
        const high = item && item.index >= 1.2;
        return h(
          "span",
          { className: `index-line${high ? " index-high" : ""}` },
          audiences.length > 1 ? h("span", { className: "visually-hidden" }, `${audience.label}: `) : null,
          h("span", { className: "number" }, item ? formatIndex(item.index) : "–"),
        );
      }),
    );
  }

  function legend(audiences) {
    if (audiences.length < 2) return null;
    return h(
      "ul",
      { className: "legend", "aria-label": "Legend" },
      audiences.map((audience) =>
        h("li", {}, h("span", { className: `swatch swatch-${audience.role}`, "aria-hidden": "true" }), audience.label),
      ),
    );
  }


  function renderCategories(audiences) {
    const rows = joinRows(audiences.map((audience) => audience.document.categories));
    if (rows.length === 0) {
      $("categories").replaceChildren(emptyNote(audiences, "interests"));
      return;
    }
    // One tbody per category row and one (hidden until opened) for its subcategories.
    const bodies = rows.flatMap((row, position) => {
      const subcategories = joinRows(row.values.map((item) => item && item.subcategories));
      const subId = `subcategories-${position}`;
      let name = h("span", { className: "no-disclosure" }, row.name);
      let subBody = null;
      if (subcategories.length > 0) {
        subBody = h(
          "tbody",
          { id: subId, className: "subcategories", hidden: true, "data-position": position },
          subcategories.map((sub) =>
            h(
              "tr",
              { className: "subcategory", "data-key": sub.key },
              h("th", { scope: "row", className: "name" }, sub.name),
              shareCell(sub, audiences),
              indexCell(sub, audiences),
            ),
          ),
        );
        name = h(
          "button",
          { type: "button", className: "disclosure", "aria-expanded": "false", "aria-controls": subId },
          row.name,
        );
        name.addEventListener("click", () => {
          const open = name.getAttribute("aria-expanded") !== "true";
          name.setAttribute("aria-expanded", String(open));
          subBody.hidden = !open;
        });
      }
      const categoryBody = h(
        "tbody",
        { className: "category", "data-position": position },
        h(
          "tr",
          { "data-key": row.key },
          h("th", { scope: "row", className: "name" }, name),
          shareCell(row, audiences),
          indexCell(row, audiences),
        ),
      );
      return subBody ? [categoryBody, subBody] : [categoryBody];
    });
    const table = h(
      "table",
      { className: "chart", id: "categories-table" },
      h("caption", { className: "visually-hidden" }, "Interest categories: share of the audience and affinity index"),
      h(
        "thead",
        {},
        h("tr", {}, h("th", { scope: "col" }, "Category"), h("th", { scope: "col" }, "Share"), h("th", { scope: "col", className: "index" }, "Index")),
      ),
      bodies,
    );
    const more = h("button", { type: "button", className: "button-quiet show-all" });
    let expanded = false;
    const fill = () => {
      bodies.forEach((body) => {
        const position = Number(body.dataset.position);
        body.classList.toggle("beyond-top", !expanded && position >= CATEGORY_ROWS);
      });
      more.textContent = expanded ? `Show the top ${CATEGORY_ROWS}` : `Show all ${rows.length} categories`;
    };
    more.hidden = rows.length <= CATEGORY_ROWS;
    more.addEventListener("click", () => {
      expanded = !expanded;
      fill();
    });
    fill();
    $("categories").replaceChildren(...[legend(audiences), table, more].filter(Boolean));
  }

  function renderDemographics(audiences) {
    const panels = DIMENSIONS.map((dimension) => {
      let rows = joinRows(audiences.map((audience) => audience.document.demographics[dimension.key]));
      if (dimension.key === "ages") {
        rows = rows.sort((a, b) => AGE_ORDER.indexOf(a.key) - AGE_ORDER.indexOf(b.key));
      }
      const title = h("h3", { id: `dimension-${dimension.key}` }, dimension.title);
      if (rows.length === 0) {
        return h("section", { className: "dimension", "aria-labelledby": title.id }, title, emptyNote(audiences, "values"));
      }
      return h(
        "section",
        { className: `dimension${dimension.table ? " dimension-wide" : ""}`, "aria-labelledby": title.id },
        title,
        legend(audiences),
        dimensionTable(dimension, rows, audiences),
      );
    });
    $("demographics").replaceChildren(...panels);
  }

  /** A table of one dimension; countries and metros sort by any column and start with the top 10. */
  function dimensionTable(dimension, rows, audiences) {
    const body = h("tbody");
    const sort = { column: null, descending: true };
    let expanded = false;
    // Column headings: the dimension, then one share column per audience (swatch + hidden name).
    const labels = dimension.table
      ? [
          [dimension.heading],
          ...audiences.map((a) =>
            audiences.length > 1
              ? [h("span", { className: `swatch swatch-${a.role}`, "aria-hidden": "true" }), "Share", h("span", { className: "visually-hidden" }, `: ${a.label}`)]
              : ["Share"],
          ),
        ]
      : [[dimension.heading], ["Share"]];
    const headerCells = labels.map((label, column) => {
      if (!dimension.table) return h("th", { scope: "col" }, label);
      const button = h("button", { type: "button", className: "sort" }, ...label);
      const cell = h("th", { scope: "col", "aria-sort": "none" }, button);
      button.addEventListener("click", () => {
        sort.descending = sort.column === column ? !sort.descending : column !== 0;
        sort.column = column;
        headerCells.forEach((other, i) =>
          other.setAttribute("aria-sort", i === column ? (sort.descending ? "descending" : "ascending") : "none"),
        );
        fill();
      });
      return cell;
    });
    const more = h("button", { type: "button", className: "button-quiet show-all" });
    more.addEventListener("click", () => {
      expanded = !expanded;
      fill();
    });
    function ordered() {
      if (sort.column === null) return rows;
      const value = (row) => (sort.column === 0 ? row.name : row.values[sort.column - 1]?.ratio ?? -1);
      const sorted = [...rows].sort((a, b) => {
        const x = value(a);
        const y = value(b);
        const order = typeof x === "string" ? x.localeCompare(y) : x - y;
        return sort.descending ? -order : order;
      });
      return sorted;
    }
    function fill() {
      const visible = dimension.table && !expanded ? ordered().slice(0, TABLE_ROWS) : ordered();
      body.replaceChildren(
        ...visible.map((row) =>
          h(
            "tr",
            { "data-key": row.key },
            h("th", { scope: "row", className: "name" }, row.name),
            dimension.table
              ? audiences.map((audience, i) => shareCell({ values: [row.values[i]] }, [audience]))
              : shareCell(row, audiences),
          ),
        ),
      );
      more.hidden = !dimension.table || rows.length <= TABLE_ROWS;
      const what = dimension.title.toLowerCase();
      more.textContent = expanded ? `Show the top ${TABLE_ROWS} ${what}` : `Show all ${rows.length} ${what}`;
    }
    fill();
    const table = h(
      "table",
      { className: `chart${dimension.table ? " sortable" : ""}`, id: `${dimension.key}-table` },
      h("caption", { className: "visually-hidden" }, `${dimension.title}: share of the audience`),
      h("thead", {}, h("tr", {}, headerCells)),
      body,
    );
    return h("div", { className: "table-wrap" }, table, more);
  }

  // --- CSV -----------------------------------------------------------------------------------------

  const CSV_COLUMNS = ["audience", "date", "section", "parent_key", "key", "name", "share", "index", "people"];

  /** A cell as CSV: quoted when needed; text that a spreadsheet would run as a formula is defused. */
  function csvCell(value) {
    if (value === null || value === undefined) return "";
    let text = String(value);
    if (typeof value === "string" && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  }

  /** Every number the page shows (subcategories included), one row per item and audience. */
  function toCsv(state) {
    const lines = [CSV_COLUMNS];
    for (const audience of shown(state)) {
      const doc = audience.document;
      const row = (section, parent, key, name, share, index, people) =>
        lines.push([doc.type, doc.date, section, parent, key, name, share, index, people]);
      row("size", "", "", "Audience size", null, null, doc.size_is_upper_bound ? "<100" : doc.size);
      for (const category of doc.categories || []) {
        row("category", "", category.key, category.name, category.ratio, category.index, null);
        for (const sub of category.subcategories || []) {
          row("subcategory", category.key, sub.key, sub.name, sub.ratio, sub.index, null);
        }
      }
      for (const dimension of DIMENSIONS) {
        for (const item of doc.demographics[dimension.key] || []) {
          row(dimension.key, "", item.key, item.name, item.ratio, null, null);
        }
      }
    }
    return lines.map((line) => line.map(csvCell).join(",")).join("\r\n") + "\r\n";
  }

  function download() {
    if (!current) return;
    const blob = new Blob([toCsv(current)], { type: "text/csv;charset=utf-8" });
    const parts = ["pinsights", current.account, current.primary.type, current.compare?.type, current.primary.date];
    const link = h("a", {
      href: URL.createObjectURL(blob),
      download: `${parts.filter(Boolean).join("-").toLowerCase()}.csv`,
    });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  }

  // --- wiring --------------------------------------------------------------------------------------

  function busy(form, isBusy) {
    for (const control of form.elements) control.disabled = isBusy;
  }

  function start() {
    $("credentials-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = event.currentTarget;
      const clientId = $("client-id").value.trim();
      const secret = $("client-secret").value;
      if (!clientId || !secret) {
        showAlert("Enter both the client ID and the client secret.");
        return;
      }
      busy(form, true);
      showAlert("");
      try {
        session.token = await signIn(clientId, secret);
        $("client-secret").value = "";
        showInsights();
      } catch (error) {
        showAlert(error.message);
      } finally {
        busy(form, false);
      }
    });
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("access-token").value.trim();
      if (!token) {
        showAlert("Paste an access token first.");
        return;
      }
      if (expired(claimsOf(token))) {
        showAlert("This access token has expired. Ask for a new one, or sign in with a client ID and secret.");
        return;
      }
      $("access-token").value = "";
      session.token = token;
      showAlert("");
      showInsights();
    });
    $("sign-out").addEventListener("click", () => {
      showSignIn("");
      setStatus("You are signed out.");
    });
    $("audience").addEventListener("change", (event) => {
      view.audience = event.target.value;
      if (view.compare === view.audience) view.compare = "";
      loadView(false);
    });
    $("compare").addEventListener("change", (event) => {
      view.compare = event.target.value;
      loadView(false);
    });
    $("date").addEventListener("change", (event) => {
      view.date = event.target.value;
      loadView(false);
    });
    setUpAccountField();
    $("view").addEventListener("submit", (event) => {
      event.preventDefault(); // Enter in the account field: show that account
      chooseAccount();
    });
    $("download").addEventListener("click", download);
    window.addEventListener("popstate", () => {
      if (!session.token) return;
      readUrl();
      closeMatches();
      showAccount();
      loadAccount(true);
    });

    readUrl();
    const token = session.token;
    if (!token) {
      showSignIn("");
    } else if (expired(claimsOf(token))) {
      showSignIn("Your sign-in has expired. Please sign in again.");
    } else {
      showInsights();
    }
  }

  // For scripts and tests: the formatting and the CSV, exactly as the page uses them.
  window.pinsights = Object.freeze({ formatShare, formatIndex, toCsv });
  start();
})();
