# outbound.sh - the outbound row of bench/run (sourced by it; not run alone)
#
# bench_outbound MODE DIR FSYNC - $n_out letters of 4 KiB, all for one
# domain (remote.bench.example), queued, then delivered through the
# server's relay host to a fresh smtp-sink; --runs runs, pollsmtpd and
# (with --vs-postfix) Postfix interleaved, the order swapped every run.
#
# How the letters are queued, the same for both: smtp-source sends them
# into the server (20 sessions, a new connection per letter, HELO, one
# recipient) while the server delivers nothing:
#   pollsmtpd  delivery.enabled = false: the letters stay in
#              .OTHER_SERVERS/remote.bench.example/
#   Postfix    smtpd_recipient_restrictions say HOLD for the domain
#              (check_recipient_access): cleanup puts each letter in
#              hold/; then `postsuper -H ALL` moves them to deferred/,
#              where nothing looks before queue_run_delay (300 s)
# Then, timed from here until the queue is empty (every letter removed
# after the sink's 250) and the sink counted every letter:
#   pollsmtpd  is stopped and started again with delivery.enabled = true
#              (its agent scans the queue at start); the start is timed
#   Postfix    `postqueue -f` (run outside Postfix's cgroup; its flush
#              daemon runs inside) makes qmgr scan deferred/ at once
# (Queueing with Postfix's qmgr left out of master.cf instead made every
# cleanup wait for a trigger that fails: 20 letters/s.)
# Both use their defaults for concurrency (pollsmtpd: max_per_domain 5,
# max_connections 50; Postfix: default_destination_concurrency_limit 20
# with its slow start, connection caching on demand), fsync on (Postfix
# always syncs; pollsmtpd with application.maildir.fsync = true).
#
# Figures: letters/s = letters / (time until the queue is empty); CPU per
# letter of every process of the server over that time (pollsmtpd, its
# logger and its agent; Postfix's master, qmgr, smtp, trivial-rewrite
# and whatever else ran), from its cgroup as for the other rows; the
# letters smtp-sink counted (-c), which must be all of them; the load
# average of the machine when the run ended.

out_domain=remote.bench.example
out_timeout=600			# seconds for one queue to drain

# outbound_record MODE SERVER RUN N T0 END ARRIVED LEFT CPU_US
outbound_record() {
	local load

	load=$(cut -d' ' -f1 /proc/loadavg)
	awk -v mode="$1" -v server="$2" -v run="$3" -v n="$4" -v t0="$5" \
	    -v t1="$6" -v arrived="$7" -v left="$8" -v cpu="$9" \
	    -v load="$load" 'BEGIN {
		s = (t1 - t0) / 1e9;
		printf "outbound\t%s\t%s\t%s\t%.1f\t%.1f\t%.3f\t%s\t%s\t%s\t%s\n",
		    mode, server, run, n / s, cpu / n, s, arrived, left, load, n
	}' >> "$results"
	if [ "$7" -lt "$4" ] || [ "$8" -ne 0 ]; then
		printf 'fail\toutbound (%s) %s run %s: %s of %s letters at the sink, %s left in the queue\n' \
		    "$1" "$2" "$3" "$7" "$4" "$8" >> "$results"
	fi
}

# outbound_queue SERVER PORT RUN - smtp-source puts the letters in
outbound_queue() {
	if ! timeout "$smtp_timeout" smtp-source -s 20 -m "$n_out" -l 4096 \
	    -f bench@client.example -t "rcpt@$out_domain" -M client.example \
	    "127.0.0.1:$2" >/dev/null 2>"$work/smtp-source.err"; then
		printf 'fail\toutbound %s run %s: queueing: %s\n' "$1" "$3" \
		    "$(head -c 200 "$work/smtp-source.err" | tr '\n\t' '  ')" \
		    >> "$results"
		return 1
	fi
}

# outbound_check SERVER RUN KIND DIR - the whole batch is queued
outbound_check() {
	local q

	q=$("$python" "$here/outbound.py" count "$3" "$4")
	[ "$q" = "$n_out" ] && return 0
	printf 'fail\toutbound %s run %s: %s letters queued, not %s\n' "$1" \
	    "$2" "$q" "$n_out" >> "$results"
	return 1
}

# outbound_pollsmtpd MODE DIR FSYNC RUN
outbound_pollsmtpd() {
	local mode=$1 dir=$2/outbound-pollsmtpd-$4 fsync=$3 r=$4
	local sport port t0 end arrived left cpu queue

	sport=$(free_port)
	port=$(free_port)
	start_sink "$sport" "$dir.sink" relay.bench.example
	queue=$dir/root/.OTHER_SERVERS/$out_domain
	log "outbound ($mode): pollsmtpd run $r: queueing $n_out letters"
	pollsmtpd_extra="delivery = { enabled = false; relayhost = \"[127.0.0.1]:$sport\"; };" \
	    start_pollsmtpd "$dir" "$fsync" "$port"
	if ! outbound_queue pollsmtpd "$port" "$r"; then
		stop_pollsmtpd
		stop_sink
		return
	fi
	stop_pollsmtpd
	if ! outbound_check pollsmtpd "$r" pollsmtpd "$queue"; then
		stop_sink
		return
	fi
	sync
	log "outbound ($mode): pollsmtpd run $r: delivering"
	t0=$(now_ns)
	pollsmtpd_extra="delivery = { enabled = true; relayhost = \"[127.0.0.1]:$sport\"; };" \
	    start_pollsmtpd "$dir" "$fsync" "$port"
	read -r end arrived left < <("$python" "$here/outbound.py" drain \
	    pollsmtpd "$queue" "$dir.sink" "$n_out" "$out_timeout")
	cpu=$(server_cpu_us pollsmtpd)
	stop_pollsmtpd
	stop_sink
	outbound_record "$mode" pollsmtpd "$r" "$n_out" "$t0" "${end:-$t0}" \
	    "${arrived:-0}" "${left:-$n_out}" "$cpu"
}

# outbound_postfix MODE DIR RUN
outbound_postfix() {
	local mode=$1 dir=$2/outbound-postfix-$3 r=$3
	local sport port t0 end arrived left cpu0 cpu1

	sport=$(free_port)
	port=$(free_port)
	start_sink "$sport" "$dir.sink" relay.bench.example
	log "outbound ($mode): Postfix run $r: queueing $n_out letters"
	postfix_relayhost="[127.0.0.1]:$sport" \
	    postfix_rcpt_access="inline:{ $out_domain=HOLD }" \
	    start_postfix "$dir" "$port"
	if ! outbound_queue Postfix "$port" "$r" \
	    || ! outbound_check Postfix "$r" postfix "$dir/queue"; then
		stop_postfix
		stop_sink
		return
	fi
	postsuper -c "$dir/etc" -H ALL </dev/null >>"$dir/start.log" 2>&1
	sync
	log "outbound ($mode): Postfix run $r: delivering"
	cpu0=$(server_cpu_us Postfix)
	t0=$(now_ns)
	postqueue -c "$dir/etc" -f </dev/null >>"$dir/start.log" 2>&1
	read -r end arrived left < <("$python" "$here/outbound.py" drain \
	    postfix "$dir/queue" "$dir.sink" "$n_out" "$out_timeout")
	cpu1=$(server_cpu_us Postfix)
	stop_postfix
	stop_sink
	outbound_record "$mode" Postfix "$r" "$n_out" "$t0" "${end:-$t0}" \
	    "${arrived:-0}" "${left:-$n_out}" "$((cpu1 - cpu0))"
}

bench_outbound() {
	local mode=$1 dir=$2 fsync=$3 r

	for r in $(seq "$runs"); do
		if [ $vs_postfix = 1 ] && [ $((r % 2)) = 0 ]; then
			outbound_postfix "$mode" "$dir" "$r"
			outbound_pollsmtpd "$mode" "$dir" "$fsync" "$r"
		else
			outbound_pollsmtpd "$mode" "$dir" "$fsync" "$r"
			[ $vs_postfix = 1 ] && outbound_postfix "$mode" "$dir" "$r"
		fi
	done
}
