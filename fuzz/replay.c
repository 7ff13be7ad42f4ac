/*
 * NAME
 *	replay - run a fuzz harness over files, without libFuzzer
 * SYNOPSIS
 *	replay_NAME FILE-OR-DIRECTORY...
 * DESCRIPTION
 *	Linked with one harness, this calls LLVMFuzzerTestOneInput() once
 *	for every file named, and for every file in every directory named
 *	(the seed corpus and the inputs of past crashes), so that `make
 *	check` proves, with an ordinary build, that none of them fails any
 *	more. A failing input aborts, which fails the test.
 */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path)
{
	FILE *fp;
	uint8_t *data;
	long n;

	if ((fp = fopen(path, "rb")) == NULL) {
		perror(path);
		return -1;
	}
	if (fseek(fp, 0, SEEK_END) < 0 || (n = ftell(fp)) < 0 ||
	    fseek(fp, 0, SEEK_SET) < 0) {
		perror(path);
		fclose(fp);
		return -1;
	}
	if ((data = malloc((size_t)n + 1)) == NULL ||
	    fread(data, 1, (size_t)n, fp) != (size_t)n) {
		perror(path);
		free(data);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	LLVMFuzzerTestOneInput(data, (size_t)n);
	free(data);
	return 0;
}

int
main(int argc, char **argv)
{
	struct dirent *de;
	struct stat st;
	char path[4096];
	int i, count = 0, failed = 0;
	DIR *dir;

	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
			failed |= replay_file(argv[i]) < 0;
			count++;
			continue;
		}
		if ((dir = opendir(argv[i])) == NULL) {
			perror(argv[i]);
			return 1;
		}
		while ((de = readdir(dir)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			if (snprintf(path, sizeof(path), "%s/%s", argv[i],
			    de->d_name) >= (int)sizeof(path))
				continue;
			failed |= replay_file(path) < 0;
			count++;
		}
		closedir(dir);
	}
	printf("%s: %d inputs replayed\n", argv[0], count);
	return failed || count == 0;
}
