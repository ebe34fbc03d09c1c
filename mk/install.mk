# `make install`: fragments append to
#   INSTALL_BINS     -> $(BINDIR)
#   INSTALL_SBINS    -> $(SBINDIR)
#   INSTALL_MANS     -> $(MANDIR)/man<section>  (section from the file suffix)
#   INSTALL_EXTRA    extra phony targets run as part of install

.PHONY: install

install: all $(INSTALL_EXTRA)
	@set -e; \
	for f in $(INSTALL_BINS); do \
		install -D -m 0755 $$f $(DESTDIR)$(BINDIR)/$$(basename $$f); \
		echo "installed $(DESTDIR)$(BINDIR)/$$(basename $$f)"; done; \
	for f in $(INSTALL_SBINS); do \
		install -D -m 0755 $$f $(DESTDIR)$(SBINDIR)/$$(basename $$f); \
		echo "installed $(DESTDIR)$(SBINDIR)/$$(basename $$f)"; done; \
	for f in $(INSTALL_MANS); do \
		sec=$${f##*.}; \
		install -D -m 0644 $$f $(DESTDIR)$(MANDIR)/man$$sec/$$(basename $$f); \
		echo "installed $(DESTDIR)$(MANDIR)/man$$sec/$$(basename $$f)"; done; \
	if [ -z "$(strip $(INSTALL_BINS)$(INSTALL_SBINS)$(INSTALL_MANS)$(INSTALL_EXTRA))" ]; then \
		echo "make install: nothing to install yet"; fi
