/*
 * replay — run a fuzz target over saved inputs without libFuzzer.
 *
 *   replay_<name> PATH...
 *
 * Each PATH is a file or a directory (its regular files, in name order, not
 * recursive). Every input is copied into a buffer of exactly its size (so
 * an ASan build catches a read past the end) and given to
 * LLVMFuzzerTestOneInput once. Prints "replayed N inputs" and exits 0;
 * exits 2 if a PATH cannot be read or no input was found. A crashing input
 * ends the process (abort, sanitizer report): the line naming it was
 * printed to stdout first.
 *
 * Built with the normal compiler in every build ($(BUILD)/fuzz/replay_*),
 * so `make check` replays the corpora without clang.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "tests/fuzz/fuzz.h"

/* Only libFuzzer calls custom mutators; this never runs. */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size)
{
	(void)data;
	(void)max_size;
	return size;
}

static int run_one(const char *path)
{
	struct buf b = BUF_INIT;
	uint8_t *copy;
	int rc = fuzz_read_file(path, &b);

	if (rc) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(-rc));
		return rc;
	}
	/* Exactly b.len bytes: the buffer's spare capacity would hide overreads. */
	copy = malloc(b.len ? b.len : 1);
	if (!copy) {
		buf_release(&b);
		return -ENOMEM;
	}
	memcpy(copy, b.data ? b.data : "", b.len);
	printf("replay: %s\n", path);
	fflush(stdout);
	LLVMFuzzerTestOneInput(copy, b.len);
	free(copy);
	buf_release(&b);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int run_dir(const char *dir, size_t *count)
{
	struct dirent **ents = NULL;
	int n = scandir(dir, &ents, NULL, by_name), i, rc = 0;

	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -errno;
	}
	for (i = 0; i < n; i++) {
		struct stat st;
		char *p = NULL;

		if (!rc && asprintf(&p, "%s/%s", dir, ents[i]->d_name) < 0)
			rc = -ENOMEM;
		if (!rc && stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
			rc = run_one(p);
			if (!rc)
				(*count)++;
		}
		free(p);
		free(ents[i]);
	}
	free(ents);
	return rc;
}

int main(int argc, char **argv)
{
	size_t count = 0;
	int i, rc = 0;

	for (i = 1; i < argc && !rc; i++) {
		struct stat st;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			rc = -errno;
		} else if (S_ISDIR(st.st_mode)) {
			rc = run_dir(argv[i], &count);
		} else {
			rc = run_one(argv[i]);
			if (!rc)
				count++;
		}
	}
	if (rc || !count) {
		fprintf(stderr, "replay: %s\n", rc ? "failed" : "no inputs");
		return 2;
	}
	printf("replayed %zu inputs\n", count);
	return 0;
}
