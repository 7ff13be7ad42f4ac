# packaging/local.mk - DEB and RPM packages, built from `make dist`'s
# tarball in packaging/build/ (nothing outside the build tree is touched).
#
#   make deb    dpkg-buildpackage: packaging/build/deb/*.deb, *.changes
#               (DEB_BUILD_OPTIONS=nocheck skips make check)
#   make rpm    rpmbuild -bb: packaging/build/rpm/RPMS/<arch>/*.rpm
#               (RPMBUILD_FLAGS='--without check' skips make check)
#
# The tests in tests/packaging/ build, install and check them.

EXTRA_DIST += \
	%D%/debian/changelog \
	%D%/debian/control \
	%D%/debian/copyright \
	%D%/debian/docs \
	%D%/debian/examples \
	%D%/debian/README.Debian \
	%D%/debian/postinst \
	%D%/debian/postrm \
	%D%/debian/pollsmtpd.lintian-overrides \
	%D%/debian/rules \
	%D%/debian/source/format \
	%D%/rpm/pollsmtpd.spec.in \
	%D%/rpm/pollsmtpd.spec \
	tests/packaging/lib.sh \
	tests/packaging/install-test.sh \
	tests/packaging/deb-test.sh \
	tests/packaging/rpm-test.sh \
	tests/packaging/sysv-test.sh \
	tests/packaging/systemd-test.sh

pkg_builddir = %D%/build
DPKG_BUILDPACKAGE_FLAGS = -us -uc
RPMBUILD_FLAGS =

# deb - the Debian way for an upstream tarball: it becomes the .orig
# tarball, debian/ comes from the tarball's packaging/debian/, and the
# changelog must name this version.
deb: dist-gzip
	rm -rf $(pkg_builddir)/deb
	$(MKDIR_P) $(pkg_builddir)/deb
	cp $(distdir).tar.gz $(pkg_builddir)/deb/$(PACKAGE)_$(VERSION).orig.tar.gz
	cd $(pkg_builddir)/deb && tar -xzf $(PACKAGE)_$(VERSION).orig.tar.gz \
	  && cp -R $(distdir)/packaging/debian $(distdir)/debian
	@v=`cd $(pkg_builddir)/deb/$(distdir) && dpkg-parsechangelog -S Version` \
	  && case "$$v" in \
	    $(VERSION)-*) ;; \
	    *) echo "packaging/debian/changelog is at $$v, configure at $(VERSION): add a changelog entry (dch -v $(VERSION)-1)" >&2; exit 1 ;; \
	  esac
	cd $(pkg_builddir)/deb/$(distdir) && dpkg-buildpackage $(DPKG_BUILDPACKAGE_FLAGS)
	@echo "make deb: built in $(pkg_builddir)/deb:" && ls $(pkg_builddir)/deb/*.deb

# rpm - the spec that configure made goes into the tarball; it is taken
# from there. On a system whose rpm database does not know the build
# dependencies (rpm on Debian), they are not checked.
rpm: dist-gzip
	rm -rf $(pkg_builddir)/rpm
	$(MKDIR_P) $(pkg_builddir)/rpm/BUILD $(pkg_builddir)/rpm/BUILDROOT \
	  $(pkg_builddir)/rpm/RPMS $(pkg_builddir)/rpm/SOURCES \
	  $(pkg_builddir)/rpm/SPECS $(pkg_builddir)/rpm/SRPMS
	cp $(distdir).tar.gz $(pkg_builddir)/rpm/SOURCES/
	tar -xzOf $(distdir).tar.gz $(distdir)/packaging/rpm/$(PACKAGE).spec \
	  > $(pkg_builddir)/rpm/SPECS/$(PACKAGE).spec
	nodeps=; rpm -q rpm >/dev/null 2>&1 || nodeps=--nodeps; \
	rpmbuild --define "_topdir $(abs_builddir)/$(pkg_builddir)/rpm" $$nodeps \
	  $(RPMBUILD_FLAGS) -bb $(pkg_builddir)/rpm/SPECS/$(PACKAGE).spec
	@echo "make rpm: built in $(pkg_builddir)/rpm/RPMS:" && ls $(pkg_builddir)/rpm/RPMS/*/*.rpm

clean-local: clean-packages
clean-packages:
	-rm -rf $(pkg_builddir)
.PHONY: deb rpm clean-packages
