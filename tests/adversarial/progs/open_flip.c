/* open_flip DIR TRIES buffer|symlink: an adversary of path rules.  DIR/ok
 * and DIR/no each hold a file named "file"; a policy lets the program write
 * under DIR/ok only.  The main thread opens a path for writing TRIES times
 * while a second thread changes what that path names:
 *   buffer:  rewrites the path string between DIR/ok/file and DIR/no/file;
 *   symlink: renames symlinks over DIR/ok/link, pointing it at ok/file and
 *            no/file in turn.
 * Each open that succeeds writes one byte.  Prints
 *   "opened N refused M reached-forbidden K"
 * where K counts the opens that reached DIR/no/file (same inode). */
#include "sig_common.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>

static char path[4096] __attribute__((aligned(2)));
static char ok_file[4096], no_file[4096], link_path[4096], tmp_a[4096], tmp_b[4096];
static atomic_int done, flipping;

static void *flip_buffer(void *unused)
{
    (void)unused;
    /* "DIR/ok/file" and "DIR/no/file" differ in two bytes, which main put
     * at an even address: one 16-bit store flips the whole name. */
    volatile uint16_t *where = (volatile uint16_t *)(path + strlen(path) - strlen("ok/file"));
    uint16_t ok, no;
    memcpy(&ok, "ok", 2);
    memcpy(&no, "no", 2);
    atomic_store(&flipping, 1);
    while (!atomic_load(&done)) {
        *where = ok;
        *where = no;
    }
    return NULL;
}

static void *flip_symlink(void *unused)
{
    (void)unused;
    atomic_store(&flipping, 1);
    while (!atomic_load(&done)) {
        unlink(tmp_a);
        if (symlink(no_file, tmp_a) == 0)
            rename(tmp_a, link_path);
        unlink(tmp_b);
        if (symlink(ok_file, tmp_b) == 0)
            rename(tmp_b, link_path);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    const char *dir = argv[1];
    int tries = atoi(argv[2]);
    int by_symlink = !strcmp(argv[3], "symlink");
    snprintf(ok_file, sizeof ok_file, "%s/ok/file", dir);
    snprintf(no_file, sizeof no_file, "%s/no/file", dir);
    snprintf(link_path, sizeof link_path, "%s/ok/link", dir);
    snprintf(tmp_a, sizeof tmp_a, "%s/ok/tmp-a", dir);
    snprintf(tmp_b, sizeof tmp_b, "%s/ok/tmp-b", dir);
    struct stat forbidden;
    if (stat(no_file, &forbidden) != 0)
        return 2;
    /* "DIR//ok/file" when DIR/ would leave "ok" at an odd address */
    snprintf(path, sizeof path, "%s%s", dir, strlen(dir) % 2 ? "/" : "//");
    strcat(path, by_symlink ? "ok/link" : "ok/file");
    if (by_symlink)
        symlink(ok_file, link_path);
    pthread_t thread;
    pthread_create(&thread, NULL, by_symlink ? flip_symlink : flip_buffer, NULL);
    /* The opens begin once the flipping has: a thread not yet running made
     * some native runs race not once. */
    while (!atomic_load(&flipping))
        sched_yield();
    long opened = 0, refused = 0, reached = 0;
    for (int i = 0; i < tries; i++) {
        /* On one CPU the flipper only runs when the opener stops, and the
         * name it leaves stays for every open until the next stop: all or
         * none of the opens would race.  Stopping now and then gives it
         * many chances to leave the other name. */
        if (i % 50 == 0)
            sched_yield();
        int fd = open(path, O_WRONLY | O_APPEND);
        if (fd < 0) {
            refused++;
            continue;
        }
        struct stat st;
        opened++;
        if (fstat(fd, &st) == 0 && st.st_dev == forbidden.st_dev && st.st_ino == forbidden.st_ino)
            reached++;
        if (write(fd, "x", 1) != 1)
            return 3;
        close(fd);
    }
    atomic_store(&done, 1);
    pthread_join(thread, NULL);
    say("opened %ld refused %ld reached-forbidden %ld\n", opened, refused, reached);
    return 0;
}
