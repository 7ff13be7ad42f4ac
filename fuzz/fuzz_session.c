/*
 * NAME
 *	fuzz_session - libFuzzer harness for the SMTP protocol engine
 * DESCRIPTION
 *	The input is a byte stream from a client. It is fed to one session
 *	in one piece (as far as the engine takes bytes) and to a second
 *	session in pieces whose sizes come from the first input byte; every
 *	pending message is answered as stored. The replies of the two must
 *	be byte for byte the same: how TCP splits a stream must never change
 *	what the server says. One rule looks at how the input came, on
 *	purpose: a refused DATA with more input already waiting ends the
 *	session with 554 5.5.0 (RFC 2920), so where either run says that,
 *	the two must agree up to the first such reply. The engine must also never stall: when it
 *	takes no input, it has a message pending, output waiting, or it is
 *	closing.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conf.h"
#include "log.h"
#include "session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
quiet(enum log_level level, const char *record, size_t len, void *ctx)
{
	(void)level;
	(void)record;
	(void)len;
	(void)ctx;
}

static const struct conf *
fuzz_conf(void)
{
	static struct conf *conf;

	if (conf != NULL)
		return conf;
	log_set_sink(quiet, NULL);
	if ((conf = conf_defaults()) == NULL)
		abort();
	/* The defaults: domain example.org, users alice and bob. */
	conf->max_message_size = 4096;
	conf->max_recipients = 5;
	free(conf->hostname);
	conf->hostname = strdup("mx.fuzz.example");
	return conf;
}

static void
drain(struct session *s, struct buf *out)
{
	const char *o;
	size_t n;

	if ((o = session_output(s, &n)) != NULL && n > 0) {
		if (buf_append(out, o, n) < 0)
			abort();
		session_output_drop(s, n);
	}
}

/* run - the replies to data, fed in pieces of at most chunk bytes */
static void
run(const uint8_t *data, size_t size, int relay, size_t chunk, struct buf *out)
{
	struct session *s = session_new(fuzz_conf(), "127.0.0.1", relay, "F",
	    NULL, NULL);
	size_t pos = 0, room, n;

	if (s == NULL)
		abort();
	for (;;) {
		drain(s, out);
		if (session_pending(s) != NULL) {
			session_stored(s, SESSION_STORE_OK, "FUZZ0001");
			continue;
		}
		if (session_closing(s) || pos == size)
			break;
		if ((room = session_input_room(s)) == 0) {
			size_t left;

			/* Nothing pending, nothing to send: a stall. */
			if (session_output(s, &left) == NULL || left == 0)
				abort();
			continue;
		}
		n = size - pos;
		if (n > room)
			n = room;
		if (n > chunk)
			n = chunk;
		if (session_input(s, (const char *)data + pos, n) < 0)
			abort();
		pos += n;
	}
	drain(s, out);
	session_free(s);
}

/* pipelining_cut - where out says 554 5.5.0, if before cut; else cut */
static size_t
pipelining_cut(const struct buf *out, size_t cut)
{
	static const char reply[] = "554 5.5.0 ";
	const char *p = buf_data(out), *hit;

	if (p == NULL || (hit = strstr(p, reply)) == NULL)
		return cut;
	return (size_t)(hit - p) < cut ? (size_t)(hit - p) : cut;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf *whole, *split;
	size_t chunk, cut;
	int relay;

	if (size < 1)
		return 0;
	chunk = (data[0] & 0x3f) + 1;
	relay = data[0] >> 7;
	data++;
	size--;
	whole = buf_new(SIZE_MAX / 2);
	split = buf_new(SIZE_MAX / 2);
	run(data, size, relay, SIZE_MAX, whole);
	run(data, size, relay, chunk, split);
	cut = pipelining_cut(whole, pipelining_cut(split, SIZE_MAX));
	if (cut != SIZE_MAX ? buf_len(whole) < cut || buf_len(split) < cut
	    || memcmp(buf_data(whole), buf_data(split), cut) != 0
	    : buf_len(whole) != buf_len(split) ||
	    memcmp(buf_data(whole), buf_data(split), buf_len(whole)) != 0) {
		fprintf(stderr, "replies differ with chunk %zu:\n--- whole\n%s\n--- split\n%s\n",
		    chunk, buf_data(whole), buf_data(split));
		abort();
	}
	buf_free(whole);
	buf_free(split);
	return 0;
}
