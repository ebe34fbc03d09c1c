// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "husk-common/error.h"

static int normalise(int code)
{
	if (code < 0)
		code = -code;
	return code ? code : EIO;
}

static int error_vset(struct husk_error *err, int code, int with_errno,
		      const char *fmt, va_list ap)
{
	code = normalise(code);
	if (!err)
		return -code;
	if (err->code)		/* the innermost failure already spoke */
		return -err->code;
	err->code = code;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	if (with_errno) {
		size_t len = strlen(err->msg);

		snprintf(err->msg + len, sizeof(err->msg) - len, ": %s",
			 strerror(code));
	}
	return -code;
}

int husk_error_set(struct husk_error *err, int code, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = error_vset(err, code, 0, fmt, ap);
	va_end(ap);
	return r;
}

int husk_error_seterrno(struct husk_error *err, int code, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = error_vset(err, code, 1, fmt, ap);
	va_end(ap);
	return r;
}

int husk_error_prefix(struct husk_error *err, const char *fmt, ...)
{
	char prefix[HUSK_ERROR_MSG_MAX];
	char old[HUSK_ERROR_MSG_MAX];
	va_list ap;

	if (!err)
		return -EIO;
	if (!err->code)
		err->code = EIO;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	size_t plen = strnlen(prefix, sizeof(err->msg) - 1);

	memcpy(err->msg, prefix, plen);
	memcpy(err->msg + plen, old,
	       strnlen(old, sizeof(err->msg) - 1 - plen));
	err->msg[plen + strnlen(old, sizeof(err->msg) - 1 - plen)] = '\0';
	return -err->code;
}

void husk_error_clear(struct husk_error *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}
