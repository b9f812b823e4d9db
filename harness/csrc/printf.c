/*
 * Kernel printf family for the ngsock host harness.
 *
 * Module code calls printf(9), log(9), snprintf(9) and panic(9) with C
 * varargs, so these entry points are written in C. The formatter follows the
 * conversion semantics of FreeBSD 15's kernel printf (kvprintf), which differ
 * from the C library's: %b (bit-field decoding), %D (hexdump), %r (radix),
 * %y (signed hex), no ' ' flag, zero padding also for %c and %s, '+' honoured
 * for unsigned conversions, "%p" of NULL printing "0", %n never storing, and
 * an unknown conversion ending all further conversions (the rest of the format
 * is copied literally).
 *
 * Every function has a harness-private name (ngh_*); the Rust side exports
 * them under the kernel names. Output, panics and violations are delivered to
 * Rust through hooks installed with ngh_printf_init().
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

typedef void (*ngh_write_fn)(const char *buf, size_t len);
typedef void (*ngh_panic_fn)(const char *msg);
typedef void (*ngh_violation_fn)(const char *msg);

static ngh_write_fn ngh_write_hook;
static ngh_panic_fn ngh_panic_hook;
static ngh_violation_fn ngh_violation_hook;

void
ngh_printf_init(ngh_write_fn w, ngh_panic_fn p, ngh_violation_fn v)
{
	ngh_write_hook = w;
	ngh_panic_hook = p;
	ngh_violation_hook = v;
}

static void
ngh_console(const char *buf, size_t len)
{
	if (len == 0)
		return;
	if (ngh_write_hook != NULL)
		ngh_write_hook(buf, len);
	else
		(void)fwrite(buf, 1, len, stderr);
}

static void
ngh_report(const char *msg)
{
	if (ngh_violation_hook != NULL)
		ngh_violation_hook(msg);
	else
		fprintf(stderr, "harness: VIOLATION: %s\n", msg);
}

/* ---- output sinks ---------------------------------------------------- */

struct sink {
	void (*put)(struct sink *, int);
	int count;		/* characters produced (the return value) */
};

/* Console sink: buffers a line (or 256 bytes) and hands it to the hook. */
struct console_sink {
	struct sink s;
	size_t used;
	char buf[256];
};

static void
console_flush(struct console_sink *c)
{
	ngh_console(c->buf, c->used);
	c->used = 0;
}

static void
console_put(struct sink *s, int ch)
{
	struct console_sink *c = (struct console_sink *)s;

	if (ch == '\0')
		return;		/* the console drops NUL characters */
	c->buf[c->used++] = (char)ch;
	if (ch == '\n' || c->used == sizeof(c->buf))
		console_flush(c);
}

/* Bounded string sink (snprintf): keeps room for the terminating NUL. */
struct str_sink {
	struct sink s;
	char *dst;
	size_t room;
};

static void
str_put(struct sink *s, int ch)
{
	struct str_sink *b = (struct str_sink *)s;

	if (b->room >= 2) {
		*b->dst++ = (char)ch;
		b->room--;
	}
}

/* Unbounded string sink (sprintf). */
struct raw_sink {
	struct sink s;
	char *dst;
};

static void
raw_put(struct sink *s, int ch)
{
	struct raw_sink *b = (struct raw_sink *)s;

	*b->dst++ = (char)ch;
}

/* ---- the formatter --------------------------------------------------- */

static const char lower_digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";

#define EMIT(sk, ch) do {						\
	(sk)->put((sk), (ch));						\
	(sk)->count++;							\
} while (0)

/*
 * Writes the digits of num in base into buf backwards; returns the number of
 * digits. buf must hold 65 characters (a 64-bit value in base 2).
 */
static int
digits_of(char *buf, uintmax_t num, int base, int upper)
{
	int n = 0;

	if (base < 2 || base > 36)
		base = 10;
	do {
		char c = lower_digits[num % (unsigned)base];

		if (upper && c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		buf[n++] = c;
		num /= (unsigned)base;
	} while (num != 0);
	return (n);
}

enum lenmod { LEN_NONE, LEN_HH, LEN_H, LEN_L, LEN_Q, LEN_J, LEN_T, LEN_Z };

static int
ngh_kvprintf(struct sink *sk, const char *fmt, int radix, va_list ap)
{
	const unsigned char *f = (const unsigned char *)fmt;
	int literal_only = 0;

	if (fmt == NULL)
		f = (const unsigned char *)"(fmt null)\n";
	if (radix < 2 || radix > 36)
		radix = 10;

	for (;;) {
		const unsigned char *conv;
		char padc = ' ';
		int width = 0, prec = 0, have_dot = 0, left = 0, alt = 0;
		int upper = 0, bitfield = 0, base = 10;
		char signch = 0;
		enum lenmod len = LEN_NONE;
		const char *bitdesc = NULL;
		uintmax_t num = 0;
		int ch;

		for (;;) {
			ch = *f++;
			if (ch == '\0')
				return (sk->count);
			if (ch == '%' && !literal_only)
				break;
			EMIT(sk, ch);
		}
		conv = f - 1;
again:
		ch = *f++;
		switch (ch) {
		case '.':
			have_dot = 1;
			goto again;
		case '#':
			alt = 1;
			goto again;
		case '+':
			signch = '+';
			goto again;
		case '-':
			left = 1;
			goto again;
		case '%':
			EMIT(sk, '%');
			continue;
		case '*': {
			int v = va_arg(ap, int);

			if (have_dot)
				prec = v;
			else if (v < 0) {
				left = !left;
				width = -v;
			} else
				width = v;
			goto again;
		}
		case '0':
			if (!have_dot) {
				padc = '0';
				goto again;
			}
			/* FALLTHROUGH: a '0' after the dot starts a number */
		case '1': case '2': case '3': case '4':
		case '5': case '6': case '7': case '8': case '9': {
			int v = ch - '0';

			while (*f >= '0' && *f <= '9')
				v = v * 10 + (*f++ - '0');
			if (have_dot)
				prec = v;
			else
				width = v;
			goto again;
		}
		case 'h':
			len = (len == LEN_H) ? LEN_HH : LEN_H;
			goto again;
		case 'l':
			len = (len == LEN_L) ? LEN_Q : LEN_L;
			goto again;
		case 'q':
			len = LEN_Q;
			goto again;
		case 'j':
			len = LEN_J;
			goto again;
		case 't':
			len = LEN_T;
			goto again;
		case 'z':
			len = LEN_Z;
			goto again;
		case 'c': {
			int c = va_arg(ap, int);

			width -= 1;
			if (!left)
				while (width-- > 0)
					EMIT(sk, padc);
			EMIT(sk, c);
			if (left)
				while (width-- > 0)
					EMIT(sk, padc);
			continue;
		}
		case 's': {
			const char *s = va_arg(ap, const char *);
			int n;

			if (s == NULL)
				s = "(null)";
			if (have_dot) {
				for (n = 0; n < prec && s[n] != '\0'; n++)
					;
			} else
				n = (int)strlen(s);
			width -= n;
			if (!left)
				while (width-- > 0)
					EMIT(sk, padc);
			while (n-- > 0)
				EMIT(sk, (unsigned char)*s++);
			if (left)
				while (width-- > 0)
					EMIT(sk, padc);
			continue;
		}
		case 'D': {
			const unsigned char *p = va_arg(ap, const unsigned char *);
			const char *sep = va_arg(ap, const char *);
			int count = width != 0 ? width : 16;

			while (count-- > 0) {
				EMIT(sk, lower_digits[*p >> 4]);
				EMIT(sk, lower_digits[*p & 0x0f]);
				p++;
				if (count > 0 && sep != NULL) {
					const char *q;

					for (q = sep; *q != '\0'; q++)
						EMIT(sk, (unsigned char)*q);
				}
			}
			continue;
		}
		case 'n':
			/*
			 * The kernel consumes the argument and stores nothing;
			 * a module relying on %n is broken on FreeBSD 15.
			 */
			(void)va_arg(ap, void *);
			ngh_report("printf: %n used; the FreeBSD kernel ignores it "
			    "(nothing is stored)");
			continue;
		case 'p':
			base = 16;
			alt = (width == 0);
			signch = 0;
			num = (uintptr_t)va_arg(ap, void *);
			goto number;
		case 'b':
			left = 1;
			bitfield = 1;
			goto unsigned_arg;
		case 'o':
			base = 8;
			goto unsigned_arg;
		case 'u':
			base = 10;
			goto unsigned_arg;
		case 'X':
			upper = 1;
			/* FALLTHROUGH */
		case 'x':
			base = 16;
			goto unsigned_arg;
		case 'd':
		case 'i':
			base = 10;
			goto signed_arg;
		case 'y':
			base = 16;
			goto signed_arg;
		case 'r':
			base = radix;
			if (signch != 0) {
				signch = 0;
				goto signed_arg;
			}
			goto unsigned_arg;
		default:
			/*
			 * Unknown conversion: copy it and stop converting (the
			 * remaining arguments no longer match the format).
			 */
			if (ch == '\0') {
				/* The format ended inside a conversion. */
				while (conv < f - 1)
					EMIT(sk, *conv++);
				return (sk->count);
			}
			while (conv < f)
				EMIT(sk, *conv++);
			literal_only = 1;
			continue;
		}

unsigned_arg:
		switch (len) {
		case LEN_J: num = va_arg(ap, uintmax_t); break;
		case LEN_Q: num = va_arg(ap, unsigned long long); break;
		case LEN_T: num = (uintmax_t)va_arg(ap, ptrdiff_t); break;
		case LEN_L: num = va_arg(ap, unsigned long); break;
		case LEN_Z: num = va_arg(ap, size_t); break;
		case LEN_H: num = (unsigned short)va_arg(ap, int); break;
		case LEN_HH: num = (unsigned char)va_arg(ap, int); break;
		default: num = va_arg(ap, unsigned int); break;
		}
		if (bitfield) {
			bitdesc = va_arg(ap, const char *);
			base = (unsigned char)*bitdesc++;
		}
		goto number;

signed_arg: {
		intmax_t sv;

		switch (len) {
		case LEN_J: sv = va_arg(ap, intmax_t); break;
		case LEN_Q: sv = va_arg(ap, long long); break;
		case LEN_T: sv = va_arg(ap, ptrdiff_t); break;
		case LEN_L: sv = va_arg(ap, long); break;
		case LEN_Z: sv = va_arg(ap, ssize_t); break;
		case LEN_H: sv = (short)va_arg(ap, int); break;
		case LEN_HH: sv = (signed char)va_arg(ap, int); break;
		default: sv = va_arg(ap, int); break;
		}
		num = (uintmax_t)sv;
		if (sv < 0) {
			signch = '-';
			num = -(uintmax_t)sv;
		}
	}

number: {
		char dbuf[72];
		int nd = digits_of(dbuf, num, base, upper);
		int prefix = 0;

		if (alt && num != 0) {
			if (base == 8)
				prefix = 1;
			else if (base == 16)
				prefix = 2;
		}
		if (signch != 0)
			prefix++;
		if (!left && padc == '0')
			prec = width - prefix;
		width -= prefix + (prec > nd ? prec : nd);
		prec -= nd;
		if (!left)
			while (width-- > 0)
				EMIT(sk, ' ');
		if (signch != 0)
			EMIT(sk, signch);
		if (alt && num != 0) {
			if (base == 8)
				EMIT(sk, '0');
			else if (base == 16) {
				EMIT(sk, '0');
				EMIT(sk, 'x');
			}
		}
		while (prec-- > 0)
			EMIT(sk, '0');
		while (nd > 0)
			EMIT(sk, dbuf[--nd]);
		if (bitfield && num != 0 && bitdesc != NULL) {
			int before = sk->count;
			const unsigned char *q = (const unsigned char *)bitdesc;

			while (*q != '\0') {
				int bit = *q++;

				if (bit >= 1 && bit <= 64 &&
				    (num & ((uintmax_t)1 << (bit - 1))) != 0) {
					EMIT(sk, sk->count != before ? ',' : '<');
					while (*q > ' ')
						EMIT(sk, *q++);
				} else {
					while (*q > ' ')
						q++;
				}
			}
			if (sk->count != before) {
				EMIT(sk, '>');
				width -= sk->count - before;
			}
		}
		if (left)
			while (width-- > 0)
				EMIT(sk, ' ');
	}
	}
}

/* ---- kernel entry points (exported under their kernel names) -------- */

int
ngh_vprintf(const char *fmt, va_list ap)
{
	struct console_sink c;
	int r;

	c.s.put = console_put;
	c.s.count = 0;
	c.used = 0;
	r = ngh_kvprintf(&c.s, fmt, 10, ap);
	console_flush(&c);
	return (r);
}

int
ngh_printf(const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = ngh_vprintf(fmt, ap);
	va_end(ap);
	return (r);
}

void
ngh_vlog(int level, const char *fmt, va_list ap)
{
	(void)level;	/* console output; syslog priorities are not modelled */
	(void)ngh_vprintf(fmt, ap);
}

void
ngh_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ngh_vlog(level, fmt, ap);
	va_end(ap);
}

int
ngh_vsnprintf(char *str, size_t size, const char *fmt, va_list ap)
{
	struct str_sink b;
	int r;

	b.s.put = str_put;
	b.s.count = 0;
	b.dst = str;
	b.room = size;
	r = ngh_kvprintf(&b.s, fmt, 10, ap);
	if (b.room >= 1)
		*b.dst = '\0';
	return (r);
}

int
ngh_snprintf(char *str, size_t size, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = ngh_vsnprintf(str, size, fmt, ap);
	va_end(ap);
	return (r);
}

int
ngh_vsnrprintf(char *str, size_t size, int radix, const char *fmt, va_list ap)
{
	struct str_sink b;
	int r;

	b.s.put = str_put;
	b.s.count = 0;
	b.dst = str;
	b.room = size;
	r = ngh_kvprintf(&b.s, fmt, radix, ap);
	if (b.room >= 1)
		*b.dst = '\0';
	return (r);
}

int
ngh_vsprintf(char *buf, const char *fmt, va_list ap)
{
	struct raw_sink b;
	int r;

	b.s.put = raw_put;
	b.s.count = 0;
	b.dst = buf;
	r = ngh_kvprintf(&b.s, fmt, 10, ap);
	buf[r] = '\0';
	return (r);
}

int
ngh_sprintf(char *buf, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = ngh_vsprintf(buf, fmt, ap);
	va_end(ap);
	return (r);
}

/* The kernel formats the panic message into a 256-byte buffer. */
#define NGH_PANIC_BUF 256

void
ngh_vpanic(const char *fmt, va_list ap)
{
	char buf[NGH_PANIC_BUF];

	(void)ngh_vsnprintf(buf, sizeof(buf), fmt, ap);
	if (ngh_panic_hook != NULL)
		ngh_panic_hook(buf);
	fprintf(stderr, "panic: %s\n", buf);
	abort();
}

void
ngh_panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ngh_vpanic(fmt, ap);
	/* NOTREACHED */
	va_end(ap);
}
