/*
 * http_page: the self-check page (GET /self, /self.js, /self.css), three files from page/
 * compiled into the binary by cmake/embed_files.cmake. The page takes its token from its URL
 * fragment, which browsers never send, and asks GET /v1/self itself: these routes need no token
 * and know nothing of any mailbox. Every answer carries a Content-Security-Policy that admits
 * only the page's own files and requests (no inline script or style, no framing, no other
 * origin) and sends no Referer, so the token can leave the page only in its own request. It must
 * never serve anything but these three files, and never read the request beyond its route.
 */
#include <microhttpd.h>
#include <stddef.h>
#include <stdlib.h>

#include "http_internal.h"
#include "page_files.h"

/* Sent with each of the page's files. */
static const struct http_header page_headers[] = {
	{ "Content-Security-Policy",
	  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
	  "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'" },
	{ "Referrer-Policy", "no-referrer" },
	{ "X-Content-Type-Options", "nosniff" },
	{ "X-Frame-Options", "DENY" },
	{ NULL, NULL },
};

/* The HTML is never stored (it is where the token arrives); the script and style may be kept
   but are checked again each time, so an upgraded daemon's page is never mixed with old ones. */
static const struct http_static pages[] = {
	[HTTP_PAGE_HTML] = { page_self_html, PAGE_SELF_HTML_LEN, "text/html; charset=utf-8",
	                     "no-store", page_headers },
	[HTTP_PAGE_JS] = { page_self_js, PAGE_SELF_JS_LEN, "text/javascript; charset=utf-8",
	                   "no-cache", page_headers },
	[HTTP_PAGE_CSS] = { page_self_css, PAGE_SELF_CSS_LEN, "text/css; charset=utf-8", "no-cache",
	                    page_headers },
};

_Static_assert(sizeof(pages) / sizeof(pages[0]) == HTTP_PAGE_CSS + 1,
               "a row for each enum http_page_file");

struct http_reply http_page(struct http_server *srv, struct MHD_Connection *conn,
                            struct http_request *req)
{
	(void)srv;
	(void)conn;
	if (req->arg < 0 || (size_t)req->arg >= sizeof(pages) / sizeof(pages[0]))
		abort(); /* the route table names a file that is not here: our bug */
	return http_reply_static(&pages[req->arg]);
}
