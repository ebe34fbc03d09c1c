# Compiler and linker flags shared by every C component.
#
# SANITIZE=1 builds everything with ASan+UBSan; static binaries (the agent)
# are then linked dynamically because the sanitizer runtimes need that.

CC      ?= cc
CFLAGS_BASE := -std=gnu11 -O2 -g -Wall -Wextra -Werror \
	-Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wno-unused-parameter \
	-fstack-protector-strong -fPIC -fno-strict-aliasing
# -Ulinux: gnu11 predefines `linux` as 1, which breaks the OCI field of that name.
CPPFLAGS_BASE := -D_GNU_SOURCE -D_FORTIFY_SOURCE=2 -Ulinux \
	-DHUSK_VERSION='"$(HUSK_VERSION)"' \
	-Icommon/include -Ihost/include -I$(GEN_OUT)
LDFLAGS_BASE := -Wl,-z,relro,-z,now

ifeq ($(SANITIZE),1)
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
CFLAGS_BASE  += $(SAN_FLAGS)
LDFLAGS_BASE += $(SAN_FLAGS)
# FORTIFY and ASan overlap; keep ASan's view of the world.
CPPFLAGS_BASE := $(filter-out -D_FORTIFY_SOURCE=2,$(CPPFLAGS_BASE))
STATIC_LDFLAGS :=
else
STATIC_LDFLAGS := -static
endif

# Host tools are position-independent executables.
PIE_LDFLAGS := -pie

CFLAGS   += $(CFLAGS_BASE)
CPPFLAGS += $(CPPFLAGS_BASE)
LDFLAGS  += $(LDFLAGS_BASE)

# pkg-config answers are read lazily (recursive '='): `make check` installs
# the packages before anything expands these.
pkgcfg = $(shell pkg-config $(1) $(2) 2>/dev/null)
PROTOBUF_C_CFLAGS = $(call pkgcfg,--cflags,libprotobuf-c)
PROTOBUF_C_LIBS   = $(call pkgcfg,--libs,libprotobuf-c)
