/* rfc3339: timestamps as clients send them and PostgreSQL reads them. Pure. */
#include "rfc3339.h"

#include <stdio.h>
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

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (Howard Hinnant's
   days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

int rfc3339_epoch(const char *t, int64_t *epoch_r)
{
	if (t[0] == '\0' || !rfc3339_valid(t))
		return -1;
	int64_t s = days_from_civil(num(t, 4), num(t + 5, 2), num(t + 8, 2)) * 86400 +
	            num(t + 11, 2) * 3600 + num(t + 14, 2) * 60 + num(t + 17, 2);
	/* the zone follows the seconds and any fraction (dropped: whole seconds suffice here) */
	const char *z = t + 19;
	if (*z == '.')
		for (z++; *z >= '0' && *z <= '9'; z++)
			;
	if (*z == '+' || *z == '-') {
		int64_t off = num(z + 1, 2) * 3600 + num(z + 4, 2) * 60;
		s += *z == '+' ? -off : off;
	}
	*epoch_r = s;
	return 0;
}

void rfc3339_format(int64_t epoch, char out[RFC3339_MAX + 1])
{
	int64_t days = epoch >= 0 ? epoch / 86400 : (epoch - 86399) / 86400;
	int64_t secs = epoch - days * 86400;
	/* civil_from_days (Howard Hinnant), the inverse of days_from_civil() */
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned d = doy - (153 * mp + 2) / 5 + 1;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;
	int64_t y = (int64_t)yoe + era * 400 + (m <= 2);
	snprintf(out, RFC3339_MAX + 1, "%04lld-%02u-%02uT%02u:%02u:%02uZ", (long long)y, m, d,
	         (unsigned)(secs / 3600), (unsigned)(secs / 60 % 60), (unsigned)(secs % 60));
}
