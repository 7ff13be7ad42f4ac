# doc/local.mk - manual pages.

dist_man_MANS = %D%/pollsmtpd.8 %D%/pollsmtpd.conf.5
