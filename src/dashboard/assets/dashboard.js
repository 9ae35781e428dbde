// snapex dashboard: live fragments over Server-Sent Events, and a confirmation before
// destructive actions. No dependencies, no build step; served from /ui/static/.
//
// An element with data-live="URL" gets its content replaced by every `fragment` event of
// that URL's event stream; `expired` means the session ended (go to the login page), `end`
// that the fragment cannot be shown any more (the reason is shown in its place). The server
// ends each stream after a while and the browser reconnects by itself.
(function () {
  'use strict';

  function follow(element) {
    var source = new EventSource(element.getAttribute('data-live'));
    source.addEventListener('fragment', function (event) {
      element.innerHTML = event.data;
      element.setAttribute('data-updates', String(Number(element.getAttribute('data-updates') || '0') + 1));
    });
    source.addEventListener('expired', function () {
      source.close();
      window.location.assign('/ui/login?next=' + encodeURIComponent(window.location.pathname + window.location.search));
    });
    // A stream that ends is reconnected by the browser; one that cannot be (the server is
    // gone, or the session ended between two streams) closes, and the page says so.
    source.addEventListener('error', function () {
      if (source.readyState === EventSource.CLOSED) {
        var note = document.createElement('p');
        note.className = 'flash error';
        note.textContent = 'Live updates stopped: reload the page.';
        element.prepend(note);
      }
    });
    source.addEventListener('end', function (event) {
      source.close();
      var note = document.createElement('p');
      note.className = 'flash error';
      note.textContent = event.data;
      element.replaceChildren(note);
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('[data-live]').forEach(follow);
  });

  document.addEventListener('submit', function (event) {
    var message = event.target.getAttribute('data-confirm');
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });
})();
