// SPDX-License-Identifier: LGPL-2.1-or-later
/* husk features: what this runtime supports, in runc's `features` JSON. */
#include <stdio.h>

#include "oci.h"

static const char features[] =
"{\n"
"    \"ociVersionMin\": \"1.0.0\",\n"
"    \"ociVersionMax\": \"1.1.0\",\n"
"    \"hooks\": [\"prestart\", \"createRuntime\", \"poststart\", \"poststop\"],\n"
"    \"mountOptions\": [\"bind\", \"rbind\", \"ro\", \"rw\", \"nosuid\", \"nodev\", \"noexec\",\n"
"        \"relatime\", \"strictatime\", \"mode\", \"size\", \"newinstance\", \"ptmxmode\"],\n"
"    \"linux\": {\n"
"        \"namespaces\": [\"cgroup\", \"ipc\", \"mount\", \"network\", \"pid\", \"uts\"],\n"
"        \"cgroup\": { \"v1\": false, \"v2\": true, \"systemd\": false, \"systemdUser\": false },\n"
"        \"seccomp\": { \"enabled\": false },\n"
"        \"apparmor\": { \"enabled\": false },\n"
"        \"selinux\": { \"enabled\": false }\n"
"    },\n"
"    \"annotations\": {\n"
"        \"io.github.husk.vm\": \"each container runs in its own QEMU micro-VM\",\n"
"        \"husk.vm.cpus\": \"vCPUs of the container's VM (1..255)\",\n"
"        \"husk.vm.memory\": \"memory of the container's VM in MiB (64..1048576)\"\n"
"    }\n"
"}\n";

int cmd_oci_features(int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		oci_error("usage: husk features");
		return 1;
	}
	fputs(features, stdout);
	return 0;
}
