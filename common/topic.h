/* topic: AMQP topic-exchange matching of event types against subscription patterns.
 * Words are separated by '.'; '*' matches exactly one word, '#' zero or more. */
#ifndef DEVNODE_TOPIC_H
#define DEVNODE_TOPIC_H

/* 1 when `type` matches `pattern`. */
int topic_match(const char *pattern, const char *type);
/* 1 when `pattern` is well formed: non-empty words, '*' and '#' only as whole words. */
int topic_pattern_valid(const char *pattern);

#endif
