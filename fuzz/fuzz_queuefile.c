/*
 * NAME
 *	fuzz_queuefile - libFuzzer harness for the queue-file envelope reader
 * DESCRIPTION
 *	Whatever the bytes, the reader stays inside them and either refuses
 *	the envelope with a reason or returns one that keeps its promises:
 *	at least one recipient, the message starting at a "Received:" line
 *	inside the data, printable fields, and an envelope that, written out
 *	again in the queue-file format, reads back the same. The header
 *	section found in memory ends at an empty line (LF or CR LF), and
 *	the one read from a file of the same bytes is the same.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "buf.h"
#include "queuefile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_headers(const char *data, size_t size);

/*
 * check_headers - what queuefile_header_len() finds in memory ends where
 * an empty line begins, and queuefile_read_headers() reads the same
 * bytes from a file
 */
static void
check_headers(const char *data, size_t size)
{
	struct buf *out;
	size_t hlen;
	int complete, fd;

	hlen = queuefile_header_len(data, size, &complete);
	if (hlen > size)
		abort();
	if (complete && !(hlen < size && (data[hlen] == '\n'
	    || (data[hlen] == '\r' && hlen + 1 < size
	    && data[hlen + 1] == '\n'))))
		abort();
	if (!complete && hlen != size)
		abort();
	if ((fd = memfd_create("fuzz_queuefile", MFD_CLOEXEC)) < 0)
		return;
	if ((out = buf_new(size + 1)) != NULL
	    && write(fd, data, size) == (ssize_t)size) {
		if (queuefile_read_headers(fd, 0, out) < 0
		    || buf_len(out) != hlen
		    || (hlen > 0 && memcmp(buf_data(out), data, hlen) != 0))
			abort();
	}
	buf_free(out);
	(void)close(fd);
}

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
	size_t i, off;
	int r;

	check_headers((const char *)data, size);
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
