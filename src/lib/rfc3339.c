/* rfc3339: timestamps as clients send them and PostgreSQL reads them. Pure. */
#include "rfc3339.h"

#include <string.h>

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static unsigned num(const char *s, size_t n)
{
	unsigned v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	return v;
}

/* Whether the date and time fields name a real moment, as PostgreSQL will read them (a leap
   second :60 is accepted there too): an impossible date would fail a whole batch's cast. */
static bool calendar_ok(const char *t)
{
	static const unsigned days[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	unsigned y = num(t, 4), mo = num(t + 5, 2), d = num(t + 8, 2);
	if (y == 0 || mo < 1 || mo > 12 || d < 1 || d > days[mo - 1])
		return false;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (mo == 2 && d == 29 && !leap)
		return false;
	return num(t + 11, 2) <= 23 && num(t + 14, 2) <= 59 && num(t + 17, 2) <= 60;
}

bool rfc3339_valid(const char *t)
{
	/* YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM) */
	size_t n = strlen(t), i = 19;
	if (n == 0)
		return true;
	if (n > RFC3339_MAX || n < 20 || !digits(t, 4) || t[4] != '-' || !digits(t + 5, 2) ||
	    t[7] != '-' || !digits(t + 8, 2) || (t[10] != 'T' && t[10] != 't' && t[10] != ' ') ||
	    !digits(t + 11, 2) || t[13] != ':' || !digits(t + 14, 2) || t[16] != ':' ||
	    !digits(t + 17, 2) || !calendar_ok(t))
		return false;
	if (t[i] == '.') {
		size_t start = ++i;
		while (i < n && t[i] >= '0' && t[i] <= '9')
			i++;
		if (i == start)
			return false;
	}
	if (i + 1 == n && (t[i] == 'Z' || t[i] == 'z'))
		return true;
	/* PostgreSQL takes offsets up to 15:59 */
	return i + 6 == n && (t[i] == '+' || t[i] == '-') && digits(t + i + 1, 2) &&
	       t[i + 3] == ':' && digits(t + i + 4, 2) && num(t + i + 1, 2) <= 15 &&
	       num(t + i + 4, 2) <= 59;
}
