/*
 * Functions that are too easy to misuse, banned at compile time as in git's
 * banned.h. Force-included into every cairn translation unit by meson.build;
 * use snprintf, the cairn_buf helpers or memcpy with an explicit length.
 */
#ifndef CAIRN_BANNED_H
#define CAIRN_BANNED_H

/* Declare the real functions first, so the macros below only catch callers. */
#include <stdio.h>
#include <string.h>

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) BANNED(strncat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef gets
#define gets(x) BANNED(gets)

#endif
