/* sys/jail.h: see jail.h beside it. */
