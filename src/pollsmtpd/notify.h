/*
 * NAME
 *	notify - tell the service manager how the daemon is doing (sd_notify)
 * SYNOPSIS
 *	#include "notify.h"
 * DESCRIPTION
 *	notify_send() sends state, e.g. "READY=1", as one datagram to the
 *	AF_UNIX socket that $NOTIFY_SOCKET names, the way systemd's
 *	sd_notify(3) does: an absolute path, or an abstract name written
 *	with a leading '@'. Without $NOTIFY_SOCKET (not started by systemd
 *	with Type=notify) it does nothing. The daemon calls it once it
 *	listens and serves, so that "systemctl start" returns only then.
 *	The variable stays set: a child never sends, and systemd takes
 *	state only from the main process (NotifyAccess=main).
 * DIAGNOSTICS
 *	notify_send() returns 1 when the datagram was sent, 0 when there is
 *	no $NOTIFY_SOCKET, -1 with errno set when it could not be sent:
 *	EINVAL for a name that is neither a path nor '@'-abstract (e.g.
 *	systemd's vsock: addresses, not supported), ENAMETOOLONG for one
 *	too long for sun_path, or the error of socket() or sendto().
 * LIMITS
 *	No credentials or file descriptors are passed along.
 */
#ifndef POLLSMTPD_NOTIFY_H
#define POLLSMTPD_NOTIFY_H

int notify_send(const char *state);

#endif
