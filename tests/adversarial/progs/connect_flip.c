/* connect_flip PORT TRIES [sendto]: an adversary of address rules.  A
 * second thread keeps rewriting the struct sockaddr that the main thread
 * passes to connect() (or, with "sendto", to sendto() on a UDP socket),
 * between 127.0.0.1 (which a policy allows) and 127.0.0.2 (which it
 * denies), hoping that the kernel uses an address other than the one the
 * supervisor checked.  Prints
 *   "connected N refused M reached 127.0.0.2 K"
 * where K counts connections whose peer (getpeername) is 127.0.0.2; with
 * sendto, "sent N refused M" (the receivers count what arrived where). */
#include "sig_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/socket.h>

static struct sockaddr_in target;
static atomic_int done, flipping;

static void *flipper(void *unused)
{
    (void)unused;
    volatile in_addr_t *where = &target.sin_addr.s_addr;
    in_addr_t allowed = inet_addr("127.0.0.1"), denied = inet_addr("127.0.0.2");
    atomic_store(&flipping, 1);
    while (!atomic_load(&done)) {
        *where = allowed;
        *where = denied;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    int tries = atoi(argv[2]);
    target.sin_family = AF_INET;
    target.sin_port = htons(atoi(argv[1]));
    target.sin_addr.s_addr = inet_addr("127.0.0.1");
    pthread_t thread;
    pthread_create(&thread, NULL, flipper, NULL);
    /* 1000 sendto calls take ~2 ms natively: without this, on a busy
     * machine they could all be made before the flipper ever runs. */
    while (!atomic_load(&flipping))
        sched_yield();
    long connected = 0, refused = 0, forbidden = 0;
    if (argc > 3 && !strcmp(argv[3], "sendto")) {
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        for (int i = 0; i < tries; i++) {
            if (i % 50 == 0)
                sched_yield();  /* see the loop below */
            if (sendto(s, "x", 1, 0, (struct sockaddr *)&target, sizeof target) == 1)
                connected++;
            else
                refused++;
        }
        atomic_store(&done, 1);
        pthread_join(thread, NULL);
        say("sent %ld refused %ld\n", connected, refused);
        return 0;
    }
    for (int i = 0; i < tries; i++) {
        /* On one CPU the flipper only runs when this thread stops, and the
         * address it leaves stays for every call until the next stop: all
         * or none would race.  Stopping now and then gives it many chances
         * to leave the other address. */
        if (i % 50 == 0)
            sched_yield();
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(s, (struct sockaddr *)&target, sizeof target) == 0) {
            struct sockaddr_in peer;
            socklen_t len = sizeof peer;
            connected++;
            if (getpeername(s, (struct sockaddr *)&peer, &len) == 0 && peer.sin_addr.s_addr == inet_addr("127.0.0.2"))
                forbidden++;
        } else {
            refused++;
        }
        close(s);
    }
    atomic_store(&done, 1);
    pthread_join(thread, NULL);
    say("connected %ld refused %ld reached 127.0.0.2 %ld\n", connected, refused, forbidden);
    return 0;
}
