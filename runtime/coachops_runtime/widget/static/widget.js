/*
 * coachops chat widget (docs/channels.md, "Web widget").
 *
 *   <script src="https://RUNTIME/widget.js" data-token="END-USER-TOKEN" defer></script>
 *
 * No dependencies. Runs under a strict Content-Security-Policy: no eval, no inline script,
 * no style elements or attributes (styles are set through the CSSOM), and every text from
 * the server (model output included) is inserted as text, never parsed as HTML.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || !script.dataset.token) {
    return;
  }

  var STRINGS = {
    en: {
      title: "Coach", you: "You", label: "Message", send: "Send", sources: "Sources",
      conversation: "Conversation", page: "p.", reconnecting: "Connection lost. Reconnecting…",
      expired: "Your session has ended. Reload the page to continue.",
      failed: "Something went wrong. Please try again.",
      human: "A member of the team will answer here.", hint: "Enter sends, Shift+Enter adds a line."
    },
    es: {
      title: "Coach", you: "Tú", label: "Mensaje", send: "Enviar", sources: "Fuentes",
      conversation: "Conversación", page: "p.", reconnecting: "Conexión perdida. Reconectando…",
      expired: "Tu sesión ha terminado. Recarga la página para continuar.",
      failed: "Algo salió mal. Inténtalo de nuevo.",
      human: "Una persona del equipo responderá aquí.",
      hint: "Intro envía, Mayús+Intro añade una línea."
    },
    fr: {
      title: "Coach", you: "Vous", label: "Message", send: "Envoyer", sources: "Sources",
      conversation: "Conversation", page: "p.", reconnecting: "Connexion perdue. Reconnexion…",
      expired: "Votre session a pris fin. Rechargez la page pour continuer.",
      failed: "Une erreur s’est produite. Réessayez.",
      human: "Un membre de l’équipe répondra ici.",
      hint: "Entrée envoie, Maj+Entrée ajoute une ligne."
    },
    de: {
      title: "Coach", you: "Sie", label: "Nachricht", send: "Senden", sources: "Quellen",
      conversation: "Unterhaltung", page: "S.", reconnecting: "Verbindung unterbrochen. Verbinde neu…",
      expired: "Ihre Sitzung ist abgelaufen. Laden Sie die Seite neu.",
      failed: "Etwas ist schiefgegangen. Bitte erneut versuchen.",
      human: "Ein Mitglied des Teams antwortet hier.",
      hint: "Enter sendet, Umschalt+Enter fügt eine Zeile ein."
    }
  };

  var config = script.dataset;
  var lang = (config.lang || document.documentElement.lang || "en").slice(0, 2).toLowerCase();
  var t = STRINGS[lang] || STRINGS.en;
  var title = config.title || t.title;
  var token = config.token;
  // The API lives where the script came from: https://RUNTIME/widget.js -> https://RUNTIME/v1/
  var api = new URL("v1/", script.src);
  var MAX_RETRIES = 8;

  // ------------------------------------------------------------------ DOM helpers

  function css(element, styles) {
    Object.keys(styles).forEach(function (name) {
      element.style.setProperty(name, styles[name]);
    });
    return element;
  }

  function el(tag, attributes, styles, text) {
    var element = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      element.setAttribute(name, attributes[name]);
    });
    css(element, styles || {});
    if (text !== undefined) {
      element.textContent = text;
    }
    return element;
  }

  var host = config.target ? document.querySelector(config.target) : null;
  if (!host) {
    host = el("div", { "class": "coachops-widget" });
    script.insertAdjacentElement("afterend", host);
  }
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;

  var box = el("section", { "aria-label": title, lang: lang }, {
    "font-family": "system-ui, sans-serif", "font-size": "15px", "line-height": "1.4",
    "color": "#1d2330", "background": "#fff", "border": "1px solid #c9ced8",
    "border-radius": "10px", "display": "flex", "flex-direction": "column",
    "max-width": "420px", "height": "520px", "overflow": "hidden"
  });
  var heading = el("h2", { id: "coachops-title" }, {
    "font-size": "16px", "margin": "0", "padding": "10px 14px", "background": "#243b6b",
    "color": "#fff"
  }, title);
  var log = el("ol", {
    role: "log", "aria-live": "polite", "aria-label": t.conversation, tabindex: "0"
  }, {
    "list-style": "none", "margin": "0", "padding": "12px", "flex": "1", "overflow-y": "auto"
  });
  var status = el("p", { role: "status" }, {
    "margin": "0", "padding": "0 14px", "min-height": "1.4em", "font-size": "13px",
    "color": "#8a1c1c"
  });
  var form = el("form", { "aria-labelledby": "coachops-title" }, {
    "display": "flex", "gap": "8px", "padding": "10px", "border-top": "1px solid #e2e5eb",
    "align-items": "flex-end"
  });
  var label = el("label", { "for": "coachops-input" }, {
    "position": "absolute", "width": "1px", "height": "1px", "overflow": "hidden",
    "clip": "rect(0 0 0 0)", "white-space": "nowrap"
  }, t.label);
  var hint = el("span", { id: "coachops-hint" }, {
    "position": "absolute", "width": "1px", "height": "1px", "overflow": "hidden",
    "clip": "rect(0 0 0 0)", "white-space": "nowrap"
  }, t.hint);
  var input = el("textarea", {
    id: "coachops-input", rows: "2", maxlength: "10000", "aria-describedby": "coachops-hint"
  }, {
    "flex": "1", "resize": "none", "font": "inherit", "padding": "6px 8px",
    "border": "1px solid #8c94a5", "border-radius": "6px"
  });
  var button = el("button", { type: "submit" }, {
    "font": "inherit", "padding": "7px 14px", "border": "0", "border-radius": "6px",
    "background": "#243b6b", "color": "#fff", "cursor": "pointer"
  }, t.send);
  form.append(label, hint, input, button);
  box.append(heading, log, status, form);
  root.append(box);

  function say(text) {
    status.textContent = text;
  }

  // One message: who wrote it, its text (a Text node, so streamed pieces are appended as
  // text) and, for AI replies, the cited sources.
  function addMessage(author, text) {
    var mine = author === "end_user";
    var item = el("li", { "data-author": author }, {
      "margin": "0 0 10px", "display": "flex", "flex-direction": "column",
      "align-items": mine ? "flex-end" : "flex-start"
    });
    var who = el("span", { "class": "author" }, { "font-size": "12px", "color": "#5a6272" },
      mine ? t.you : title);
    var body = el("div", { "class": "body" }, {
      "white-space": "pre-wrap", "overflow-wrap": "anywhere", "padding": "7px 10px",
      "border-radius": "8px", "max-width": "85%",
      "background": mine ? "#243b6b" : "#eef0f4", "color": mine ? "#fff" : "#1d2330"
    });
    var textNode = document.createTextNode(text || "");
    body.append(textNode);
    item.append(who, body);
    log.append(item);
    log.scrollTop = log.scrollHeight;
    return { item: item, body: body, text: textNode };
  }

  function showCitations(message, citations) {
    if (!citations || !citations.length) {
      return;
    }
    var list = el("ol", { "class": "citations", "aria-label": t.sources }, {
      "margin": "4px 0 0", "padding": "0 0 0 4px", "list-style": "none", "font-size": "12px",
      "color": "#5a6272", "max-width": "85%"
    });
    citations.forEach(function (citation) {
      var where = String(citation.source || "");
      if (citation.page !== null && citation.page !== undefined) {
        where += ", " + t.page + " " + citation.page;
      }
      if (citation.section) {
        where += " — " + citation.section;
      }
      var entry = el("li", {}, {}, "[" + citation.number + "] " + where);
      if (citation.snippet) {
        entry.setAttribute("title", String(citation.snippet));
      }
      list.append(entry);
    });
    message.item.append(list);
  }

  // ------------------------------------------------------------------ the API

  function headers(extra) {
    var all = { Authorization: "Bearer " + token };
    Object.keys(extra || {}).forEach(function (name) {
      all[name] = extra[name];
    });
    return all;
  }

  function expired() {
    say(t.expired);
    input.disabled = true;
    button.disabled = true;
    script.dispatchEvent(new CustomEvent("coachops:session-expired"));
  }

  function sleep(ms) {
    return new Promise(function (resolve) {
      setTimeout(resolve, ms);
    });
  }

  // Stream ids are "<ms>-<seq>" (Redis Stream ids) or "stored-<n>"; a repeated or older
  // event is dropped, so a resumed stream never shows a piece twice.
  function order(id) {
    var match = /^(\d+)-(\d+)$/.exec(id);
    if (match) {
      return [0, Number(match[1]), Number(match[2])];
    }
    match = /^stored-(\d+)$/.exec(id);
    return match ? [1, Number(match[1]), 0] : null;
  }

  function isAfter(id, last) {
    var a = order(id);
    var b = order(last);
    if (!a || !b) {
      return true;
    }
    for (var i = 0; i < 3; i += 1) {
      if (a[i] !== b[i]) {
        return a[i] > b[i];
      }
    }
    return false;
  }

  // Server-Sent Events over fetch (EventSource cannot send the Authorization header).
  // An event cut off by a dropped connection is never dispatched.
  async function readEvents(body, onEvent) {
    var reader = body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    var event = { id: "", event: "", data: null };
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) {
        return;
      }
      buffer += decoder.decode(chunk.value, { stream: true });
      // A trailing "\r" may be the first half of "\r\n": keep it for the next chunk.
      var end = buffer.charAt(buffer.length - 1) === "\r" ? buffer.length - 1 : buffer.length;
      var lines = buffer.slice(0, end).split(/\r\n|\r|\n/);
      buffer = lines.pop() + buffer.slice(end);
      for (var i = 0; i < lines.length; i += 1) {
        var line = lines[i];
        if (line === "") {
          if (event.data !== null) {
            if (onEvent({ id: event.id, event: event.event || "message", data: event.data })) {
              await reader.cancel();
              return;
            }
          }
          event = { id: "", event: "", data: null };
          continue;
        }
        if (line.charAt(0) === ":") {
          continue;
        }
        var colon = line.indexOf(":");
        var field = colon < 0 ? line : line.slice(0, colon);
        var value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.charAt(0) === " ") {
          value = value.slice(1);
        }
        if (field === "data") {
          event.data = event.data === null ? value : event.data + "\n" + value;
        } else if (field === "event") {
          event.event = value;
        } else if (field === "id") {
          event.id = value;
        }
      }
    }
  }

  function parse(data) {
    try {
      return JSON.parse(data);
    } catch (error) {
      return {};
    }
  }

  // The AI reply to one message, token by token; after a dropped connection it reconnects
  // with Last-Event-ID and continues after the last event it showed.
  async function streamReply(path, message) {
    var last = "";
    var done = false;
    var note = null;
    message.item.setAttribute("aria-busy", "true");
    message.item.setAttribute("data-state", "streaming");

    function handle(event) {
      if (event.id) {
        if (last && !isAfter(event.id, last)) {
          return false;
        }
        last = event.id;
      }
      if (event.event === "token") {
        message.text.appendData(event.data);
      } else if (event.event === "reset") {
        message.text.data = "";
      } else if (event.event === "fallback") {
        note = note || el("p", { "class": "notice" }, { "margin": "4px 0 0", "font-size": "13px" });
        note.textContent = String(parse(event.data).text || "");
        message.body.append(note);
      } else if (event.event === "done") {
        var result = parse(event.data);
        message.text.data = message.text.data.trim();
        if (note && message.text.data) {
          note.remove();
        }
        showCitations(message, result.citations);
        done = true;
      }
      log.scrollTop = log.scrollHeight;
      return done;
    }

    for (var attempt = 0; !done; attempt += 1) {
      try {
        var extra = { Accept: "text/event-stream" };
        if (last) {
          extra["Last-Event-ID"] = last;
        }
        var response = await fetch(new URL(path, api), { headers: headers(extra), cache: "no-store" });
        if (response.status === 401) {
          expired();
          break;
        }
        if (response.status === 404 || response.status === 403) {
          break;
        }
        if (!response.ok || !response.body) {
          throw new Error("HTTP " + response.status);
        }
        await readEvents(response.body, handle);
        if (!done) {
          throw new Error("the stream ended before its reply did");
        }
        attempt = 0;
        say("");
      } catch (error) {
        if (attempt >= MAX_RETRIES) {
          say(t.failed);
          break;
        }
        say(t.reconnecting);
        await sleep(Math.min(250 * Math.pow(2, attempt), 8000));
      }
    }
    message.item.setAttribute("aria-busy", "false");
    message.item.setAttribute("data-state", done ? "done" : "stopped");
    if (done) {
      say("");
    } else if (!message.text.data) {
      message.item.remove(); // no reply is coming (a human took over) or none could be read
    }
  }

  async function send(text) {
    addMessage("end_user", text);
    var response;
    try {
      response = await fetch(new URL("me/messages", api), {
        method: "POST",
        headers: headers({ "Content-Type": "application/json" }),
        body: JSON.stringify({ body: text, channel: "web" })
      });
    } catch (error) {
      say(t.failed);
      return;
    }
    if (response.status === 401) {
      expired();
      return;
    }
    var answer = parse(await response.text());
    if (!response.ok) {
      say(answer.detail ? String(answer.detail) : t.failed);
      return;
    }
    say("");
    if (answer.reply_stream) {
      await streamReply(answer.reply_stream, addMessage("ai", ""));
    } else if (answer.reply === "human") {
      say(t.human);
    }
  }

  // The conversation so far; a last message still waiting for its reply resumes its stream.
  async function history() {
    var messages = [];
    var cursor = null;
    for (var pages = 0; pages < 10; pages += 1) {
      var url = new URL("me/messages", api);
      url.searchParams.set("limit", "200");
      if (cursor) {
        url.searchParams.set("cursor", cursor);
      }
      var response;
      try {
        response = await fetch(url, { headers: headers(), cache: "no-store" });
      } catch (error) {
        say(t.failed); // offline, or refused: an origin the program does not list
        return;
      }
      if (response.status === 401) {
        expired();
        return;
      }
      if (!response.ok) {
        say(t.failed);
        return;
      }
      var page = await response.json();
      messages = messages.concat(page.items || []);
      cursor = page.next_cursor;
      if (!cursor) {
        break;
      }
    }
    messages.slice(-100).forEach(function (message) {
      var shown = addMessage(message.author, message.body);
      showCitations(shown, message.citations);
    });
    var lastMessage = messages[messages.length - 1];
    if (lastMessage && lastMessage.author === "end_user") {
      await streamReply("me/messages/" + lastMessage.message_id + "/reply", addMessage("ai", ""));
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text || input.disabled) {
      return;
    }
    input.value = "";
    input.focus();
    send(text);
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : button.click();
    }
  });

  host.coachops = { ready: history() };
})();
