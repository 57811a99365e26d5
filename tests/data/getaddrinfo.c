/* getaddrinfo(NAME) as an Alpine program calls it: `gai unspec|inet NAME`, no flags.
 * Prints each address on a line; exit 0 when found, 2 with gai_strerror() otherwise. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
    struct addrinfo hints, *res, *ai;
    char text[INET6_ADDRSTRLEN];
    int rc;
    if (argc != 3) {
        fprintf(stderr, "usage: %s unspec|inet NAME\n", argv[0]);
        return 64;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = strcmp(argv[1], "inet") == 0 ? AF_INET : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(argv[2], NULL, &hints, &res);
    if (rc != 0) {
        printf("error: %s\n", gai_strerror(rc));
        return 2;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        void *addr = ai->ai_family == AF_INET
            ? (void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
            : (void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        printf("%s\n", inet_ntop(ai->ai_family, addr, text, sizeof text));
    }
    freeaddrinfo(res);
    return 0;
}
