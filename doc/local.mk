# doc/local.mk - manual pages.

dist_man_MANS = %D%/pollsmtpd.8 %D%/pollsmtpd.conf.5 %D%/maildir-inspect.1
EXTRA_DIST += %D%/dovecot.md
EXTRA_DIST += %D%/scale-out.md
