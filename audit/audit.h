/*
 * audit.h - quern-audit's commands. audit.c reads the command word and
 * hands the rest of argv (argv[0] the program, then the command's own
 * options and arguments) to the command's main, which parses its options
 * and returns the exit status: 0 clean, 1 a policy violated or a failure,
 * 2 a usage error.
 */
#ifndef QN_AUDIT_H
#define QN_AUDIT_H

int scan_main(int argc, char **argv);	      /* scan.c */
int lineage_main(int argc, char **argv);      /* lineage.c */
int datasheet_main(int argc, char **argv);    /* datasheet.c */
int eval_main(int argc, char **argv);	      /* eval.c */
int memorization_main(int argc, char **argv); /* memo.c */
int canary_main(int argc, char **argv);
int probe_main(int argc, char **argv);			     /* probe.c */
int modelcard_main(int argc, char **argv);		     /* modelcard.c */
int eusummary_main(int argc, char **argv); /* eusummary.c */ /* memo.c */

#endif
