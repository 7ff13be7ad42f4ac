/*
 * NAME
 *	fuzz_queuefile - libFuzzer harness for the queue-file envelope reader
 * DESCRIPTION
 *	Whatever the bytes, the reader stays inside them and either refuses
 *	the envelope with a reason or returns one that keeps its promises:
 *	at least one recipient, the message starting at a "Received:" line
 *	inside the data, printable fields, and an envelope that, written out
 *	again in the queue-file format, reads back the same.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "queuefile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * check_printable - no control byte; 8-bit bytes only in an envelope
 * whose sender's parameters say SMTPUTF8 (RFC 6531 addresses).
 */
static void
check_printable(const char *s, int utf8)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f
		    || ((unsigned char)*s > 0x7f && !utf8))
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct queuefile *qf = NULL, *again = NULL;
	struct queuefile_error err;
	struct buf *b;
	size_t i, off, hlen;
	int complete, r;

	hlen = queuefile_header_len((const char *)data, size, &complete);
	if (hlen > size)
		abort();
	r = queuefile_parse((const char *)data, size, &qf, &err);
	if (r == 1) {
		if (memchr(err.reason, '\0', sizeof(err.reason)) == NULL ||
		    err.reason[0] == '\0')
			abort();
		return 0;
	}
	if (r != 0)
		abort();
	off = queuefile_envelope_len(qf);
	if (off >= size || size - off < 9 || memcmp(data + off, "Received:", 9) != 0)
		abort();
	if (queuefile_nrcpts(qf) == 0)
		abort();
	check_printable(queuefile_sender(qf), queuefile_smtputf8(qf));
	check_printable(queuefile_params(qf), 0);

	/* Written out again, the envelope reads back the same. */
	if ((b = buf_new(SIZE_MAX / 2)) == NULL)
		abort();
	buf_printf(b, "X-Envelope-From: <%s>%s%s\n", queuefile_sender(qf),
	    *queuefile_params(qf) ? " " : "", queuefile_params(qf));
	for (i = 0; i < queuefile_nrcpts(qf); i++) {
		check_printable(queuefile_rcpt(qf, i), queuefile_smtputf8(qf));
		buf_printf(b, "X-Envelope-To: <%s>\n", queuefile_rcpt(qf, i));
	}
	buf_append(b, data + off, size - off);
	if (queuefile_parse(buf_data(b), buf_len(b), &again, &err) != 0 ||
	    strcmp(queuefile_sender(again), queuefile_sender(qf)) != 0 ||
	    strcmp(queuefile_params(again), queuefile_params(qf)) != 0 ||
	    queuefile_nrcpts(again) != queuefile_nrcpts(qf))
		abort();
	for (i = 0; i < queuefile_nrcpts(qf); i++)
		if (strcmp(queuefile_rcpt(again, i), queuefile_rcpt(qf, i)) != 0)
			abort();
	queuefile_free(again);
	queuefile_free(qf);
	buf_free(b);
	return 0;
}
