// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * husk-mkinitramfs: gen_init_cpio lists + kernel modules -> a reproducible,
 * compressed newc initramfs.  The work is in build.c; this is the CLI.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "husk-common/cleanup.h"
#include "build.h"

struct options {
	const char *output;
	const char *modules_dir;
	enum initramfs_compression compression;
	char **modules;
	size_t n_modules;
	char **module_files;
	size_t n_module_files;
};

static void usage(FILE *f)
{
	fputs("Usage: husk-mkinitramfs --output FILE [OPTIONS] [LIST...]\n"
	      "Build a reproducible newc initramfs from gen_init_cpio LISTs ('-' is stdin).\n\n"
	      "  -o, --output FILE          where to write the archive (required)\n"
	      "  -c, --compress KIND        gzip (default), xz, zstd or none\n"
	      "  -k, --kernel-modules DIR   modules tree with modules.dep (/lib/modules/VERSION)\n"
	      "  -m, --module NAME          add module NAME and its dependencies (repeatable)\n"
	      "  -f, --module-file PATH     add an out-of-tree .ko, loaded last (repeatable)\n"
	      "  -h, --help                 this text\n\n"
	      "Modules land in /lib/modules/<path> with /lib/modules/husk.list naming them in\n"
	      "load order.  Every mtime is SOURCE_DATE_EPOCH (or 0).\n", f);
}

static int push_arg(char ***v, size_t *n, char *arg)
{
	char **nv = reallocarray(*v, *n + 1, sizeof(**v));

	if (!nv)
		return -ENOMEM;
	nv[(*n)++] = arg;
	*v = nv;
	return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "compress", required_argument, NULL, 'c' },
		{ "kernel-modules", required_argument, NULL, 'k' },
		{ "module", required_argument, NULL, 'm' },
		{ "module-file", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int c;

	o->compression = COMPRESS_GZIP;
	while ((c = getopt_long(argc, argv, "o:c:k:m:f:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			o->output = optarg;
			break;
		case 'c':
			if (initramfs_parse_compression(optarg, &o->compression) < 0) {
				fprintf(stderr, "husk-mkinitramfs: unknown compression '%s' (gzip, xz, zstd, none)\n",
					optarg);
				return -EINVAL;
			}
			break;
		case 'k':
			o->modules_dir = optarg;
			break;
		case 'm':
			if (push_arg(&o->modules, &o->n_modules, optarg) < 0)
				return -ENOMEM;
			break;
		case 'f':
			if (push_arg(&o->module_files, &o->n_module_files, optarg) < 0)
				return -ENOMEM;
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_SUCCESS);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (!o->output) {
		fputs("husk-mkinitramfs: --output is required\n", stderr);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct image img = { 0 };
	struct husk_error err = { 0 };
	uint32_t mtime;
	int r;

	/* a dying compressor must show up as its exit status, not kill us */
	signal(SIGPIPE, SIG_IGN);
	r = parse_options(argc, argv, &o);
	if (r < 0)
		goto out;
	r = initramfs_source_date(&mtime, &err);
	for (int i = optind; r >= 0 && i < argc; i++)
		r = image_add_list_file(&img, argv[i], &err);
	if (r >= 0)
		r = image_add_modules(&img, o.modules_dir, o.modules, o.n_modules,
				      o.module_files, o.n_module_files, &err);
	if (r >= 0)
		r = initramfs_write_output(&img, o.output, o.compression, mtime, &err);
	if (r < 0)
		fprintf(stderr, "husk-mkinitramfs: %s\n",
			err.msg[0] ? err.msg : strerror(-r));
out:
	image_done(&img);
	free(o.modules);
	free(o.module_files);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
