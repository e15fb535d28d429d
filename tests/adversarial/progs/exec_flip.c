/* exec_flip TRIES: an adversary of exec path rules.  TRIES children each
 * start a thread that keeps rewriting a path between /bin/true (which a
 * policy allows) and /bin/echo (which it denies), and exec that path with
 * the argument FORBIDDEN-RAN: a line "FORBIDDEN-RAN" on stdout means the
 * denied program ran.  Prints "true N denied M killed K" at the end. */
#include "sig_common.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

static char path[32] = "/bin/true";
static atomic_int flipping;

static void *flipper(void *unused)
{
    (void)unused;
    volatile char *p = path;
    const char *names[2] = {"/bin/true", "/bin/echo"};
    for (long n = 0;; n++) {
        const char *name = names[n & 1];
        for (int i = 0; i < 10; i++)
            p[i] = name[i];
        if (n == 2)
            atomic_store(&flipping, 1);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int tries = argc > 1 ? atoi(argv[1]) : 100;
    long ran_true = 0, denied = 0, killed = 0;
    for (int i = 0; i < tries; i++) {
        pid_t child = fork();
        if (child == 0) {
            pthread_t thread;
            pthread_create(&thread, NULL, flipper, NULL);
            while (!atomic_load(&flipping))
                ;
            char *args[] = {"x", "FORBIDDEN-RAN", NULL};
            execve(path, args, (char *[]){NULL});
            _exit(3);
        }
        int status;
        waitpid(child, &status, 0);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
            killed++;
        else if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
            denied++;
        else
            ran_true++;
    }
    say("true %ld denied %ld killed %ld\n", ran_true, denied, killed);
    return 0;
}
