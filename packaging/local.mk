# packaging/local.mk - install layout, service files, DEB and RPM.
