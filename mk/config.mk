# Paths and install locations.  Override on the command line:
#   make install PREFIX=/usr DESTDIR=/tmp/stage LIBDIR=/usr/lib/x86_64-linux-gnu

BUILD      ?= build
BINDIR_OUT := $(BUILD)/bin
LIBDIR_OUT := $(BUILD)/lib
GUEST_OUT  := $(BUILD)/guest
GEN_OUT    := $(BUILD)/gen
OBJ_OUT    := $(BUILD)/obj

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
LIBEXECDIR ?= $(PREFIX)/libexec
DESTDIR    ?=

HUSK_VERSION := 0.1.0

# Test interpreter: Debian's python3 (python3-pytest, python3-protobuf are
# installed for it), not whatever python3 happens to be first in PATH.
PYTHON ?= /usr/bin/python3

# Cache outside the clone (kernel builds); see kernel/README.md.
HUSK_CACHE ?= $(if $(filter 0,$(shell id -u)),/var/cache/husk,$(HOME)/.cache/husk)
export HUSK_CACHE
