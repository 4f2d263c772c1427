# install.mk - make install [PREFIX=/usr/local] [DESTDIR=]: the binary, the
# migrations, and example systemd units and settings with PREFIX filled in.
PREFIX ?= /usr/local
INSTALL ?= install

.PHONY: install uninstall

install: all
	$(INSTALL) -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/payments/migrations \
		$(DESTDIR)$(PREFIX)/share/payments/systemd $(DESTDIR)$(PREFIX)/lib/payments
	$(INSTALL) -m 0755 bin/payments $(DESTDIR)$(PREFIX)/bin/payments
	$(INSTALL) -m 0644 lib/payments/libssl.so $(DESTDIR)$(PREFIX)/lib/payments/libssl.so
	$(INSTALL) -m 0644 migrations/*.sql $(DESTDIR)$(PREFIX)/share/payments/migrations/
	for f in deploy/systemd/*.service deploy/*.env.example; do \
		sed 's|@PREFIX@|$(PREFIX)|g' $$f > $(DESTDIR)$(PREFIX)/share/payments/systemd/$$(basename $$f); \
		chmod 0644 $(DESTDIR)$(PREFIX)/share/payments/systemd/$$(basename $$f); \
	done

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/payments
	rm -rf $(DESTDIR)$(PREFIX)/share/payments $(DESTDIR)$(PREFIX)/lib/payments
