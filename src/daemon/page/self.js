/*
 * mailquota's self-check page: reads the token from the URL fragment (#token=mqt_...), removes
 * the fragment from the address bar and keeps the token in this closure only (never in storage,
 * a cookie or the DOM), asks GET /v1/self with it and shows the answer. Every figure shown is
 * the server's own text (the *_text fields, a warning's text); only the percentage is printed
 * from its number.
 * Text goes into the page through textContent only, never as HTML.
 */
'use strict';

(function () {
	/* A token is printable ASCII (mqt_<id>_<secret>); anything longer than this is no token. */
	var TOKEN_MAX = 512;

	var MESSAGES = {
		'no-token': 'Open this page through the link you were given: the link carries the ' +
			'key that shows your quota.',
		'expired': 'This link has expired. Ask for a new one.',
		'invalid': 'This link is not valid: it may have been revoked or mistyped.',
		'forbidden': 'This link does not give access to a mailbox\u2019s quota. Ask for a ' +
			'self-check link.',
		'gone': 'This mailbox no longer exists.',
		'unavailable': 'Quota information is temporarily unavailable; try again in a minute.',
		'error': 'Something went wrong while reading your quota; try again in a minute.'
	};

	/* Why the largest message the mailbox may receive now is what it is. */
	var LIMITED_BY = {
		'mailbox': 'This is the largest message size set for your mailbox.',
		'domain': 'This is the largest message size set for your domain.',
		'system': 'This is the largest message this mail server accepts.',
		'storage': 'This is the storage space you have left (with any grace allowance): ' +
			'delete messages to receive larger ones.',
		'messages': 'Your mailbox holds as many messages as it may: delete some to receive ' +
			'new ones.',
		'domain_pool': 'The storage your domain shares is used up: ask your administrator.'
	};

	/* What to do about a quota warning: [below the limit, at or past it]. */
	var WARNING_ADVICE = {
		'storage': ['Delete old mail, or ask your administrator for more space.',
			'New mail may be refused: delete old mail, or ask your administrator for ' +
			'more space.'],
		'messages': ['Delete old messages, or ask your administrator for a higher limit.',
			'New mail may be refused: delete messages, or ask your administrator for ' +
			'a higher limit.']
	};

	function $(id) {
		return document.getElementById(id);
	}

	function setText(id, text) {
		$(id).textContent = text === null || text === undefined ? '' : String(text);
	}

	/* The token in the fragment, or null; the fragment is removed from the address bar (and
	   so from the history entry) either way. */
	function takeToken() {
		var hash = window.location.hash;
		if (hash.length <= 1)
			return null;
		try {
			window.history.replaceState(null, '', window.location.pathname +
				window.location.search);
		} catch (e) {
			/* without the history API the fragment stays: nothing else to do */
		}
		var parts = hash.slice(1).split('&');
		for (var i = 0; i < parts.length; i++) {
			if (parts[i].slice(0, 6) !== 'token=')
				continue;
			try {
				return decodeURIComponent(parts[i].slice(6));
			} catch (e) {
				return '';
			}
		}
		return null;
	}

	function show(state) {
		document.body.setAttribute('data-state', state);
		$('loading').hidden = true;
		var retry = state === 'unavailable' || state === 'error';
		$('retry-line').hidden = !retry;
		if (state === 'ok') {
			setText('error', '');
			$('error').hidden = true;
			$('quota').hidden = false;
			return;
		}
		$('quota').hidden = true;
		$('error').hidden = false;
		setText('error', MESSAGES[state]);
	}

	/* One usage block (storage, messages, pool): "7.5 MiB of 10 MiB (75 %)" with a bar, or
	   "12 used, no limit" without one; the state in words, not by colour alone. */
	function showUsage(prefix, u) {
		var limited = u.limit !== null && u.limit !== undefined;
		setText(prefix + '-used', u.used_text);
		setText(prefix + '-limit', u.limit_text);
		var bar = $(prefix + '-bar');
		var state = '';
		if (limited) {
			setText(prefix + '-of', ' of ');
			var pct = typeof u.percent === 'number' ? u.percent : 0;
			setText(prefix + '-percent', String(pct) + ' %');
			$(prefix + '-percent-wrap').hidden = false;
			bar.value = Math.min(Math.max(pct, 0), 100);
			bar.hidden = false;
			if (u.used >= u.limit) {
				state = 'Over quota: ' + (u.used > u.limit ? 'more used than the limit' :
					'the limit is reached') + '.';
				bar.setAttribute('aria-valuetext', 'over quota');
			} else if (pct >= 90) {
				state = 'Nearly full: ' + u.remaining_text + ' left.';
				bar.setAttribute('aria-valuetext', 'nearly full, ' + pct + ' %');
			} else {
				bar.setAttribute('aria-valuetext', pct + ' %');
			}
		} else {
			setText(prefix + '-of', ' used, limit: ');
			setText(prefix + '-percent', '');
			$(prefix + '-percent-wrap').hidden = true;
			bar.hidden = true;
		}
		var st = $(prefix + '-state');
		st.textContent = state;
		st.hidden = state === '';
		st.className = 'state' + (state === '' ? '' :
			u.used >= u.limit ? ' over' : ' nearly');
	}

	/* The quota warning in force for storage or messages (w: {level, text}, or null), said in
	   words beside its bar: the server's text and what to do. The bar's description names the
	   notice only while it is shown. */
	function showWarning(prefix, w) {
		var on = w !== null && typeof w === 'object' && typeof w.level === 'number' &&
			typeof w.text === 'string';
		var box = $(prefix + '-warning');
		setText(prefix + '-warning-text', on ? w.text + '.' : '');
		setText(prefix + '-warning-advice', on ?
			WARNING_ADVICE[prefix][w.level >= 100 ? 1 : 0] : '');
		box.className = 'notice warning' + (on && w.level >= 100 ? ' over' : '');
		if (on)
			box.setAttribute('data-level', String(w.level));
		else
			box.removeAttribute('data-level');
		box.hidden = !on;
		$(prefix + '-bar').setAttribute('aria-describedby',
			prefix + '-text' + (on ? ' ' + prefix + '-warning' : ''));
	}

	function render(d) {
		setText('address', d.address);
		$('disabled').hidden = d.enabled !== false;
		showUsage('storage', d.storage);
		showUsage('messages', d.messages);
		var warnings = d.warnings || {};
		showWarning('storage', warnings.storage || null);
		showWarning('messages', warnings.messages || null);

		var m = d.max_message_size;
		setText('max-size', m.text);
		setText('max-size-reason', m.limited_by && LIMITED_BY[m.limited_by] ?
			LIMITED_BY[m.limited_by] :
			m.bytes === null ? 'No limit applies.' : '');

		var pool = d.domain && d.domain.pool;
		if (pool && pool.limit !== null && pool.limit !== undefined) {
			setText('pool-domain', d.domain.name);
			showUsage('pool', pool);
			$('pool').hidden = false;
		} else {
			$('pool').hidden = true;
		}

		var t = $('as-of');
		t.setAttribute('datetime', d.as_of);
		var when = new Date(d.as_of);
		t.textContent = isNaN(when.getTime()) ? d.as_of : when.toLocaleString();
		show('ok');
	}

	/* The error body's code, or '' when it has none. */
	function errorCode(res) {
		return res.json().then(function (b) {
			return b && typeof b.error === 'string' ? b.error : '';
		}, function () {
			return '';
		});
	}

	function load(token) {
		document.body.setAttribute('data-state', 'loading');
		$('loading').hidden = false;
		$('retry-line').hidden = true;
		var req;
		try {
			/* relative: the page may sit under a proxy's path prefix (…/quota/self) */
			req = window.fetch('v1/self', {
				method: 'GET',
				headers: { 'Authorization': 'Bearer ' + token },
				cache: 'no-store',
				credentials: 'omit',
				referrerPolicy: 'no-referrer',
				redirect: 'error'
			});
		} catch (e) {
			show('invalid'); /* a header the browser refuses to send: no token of ours */
			return;
		}
		req.then(function (res) {
			if (res.ok) {
				return res.json().then(render, function () {
					show('error');
				});
			}
			if (res.status === 401) {
				return errorCode(res).then(function (code) {
					show(code === 'token_expired' ? 'expired' : 'invalid');
				});
			}
			if (res.status === 403)
				return show('forbidden');
			if (res.status === 404)
				return show('gone');
			if (res.status === 503 || res.status === 429)
				return show('unavailable');
			return show('error');
		}).catch(function () {
			show('unavailable'); /* the network, or the server, is out of reach */
		});
	}

	function start() {
		var token = takeToken();
		if (token === null) {
			show('no-token');
			return;
		}
		if (token === '' || token.length > TOKEN_MAX || !/^[\x21-\x7e]+$/.test(token)) {
			show('invalid');
			return;
		}
		$('retry').addEventListener('click', function () {
			load(token);
		});
		load(token);
	}

	start();
})();
