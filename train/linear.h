/*
 * linear - quern-train's fastText-style linear classifier (--arch linear):
 * the command-line side of lib/linclass (reading {"text","label"} JSON
 * Lines, the validation split, training, metrics, the model directory,
 * and classify's output). Each entry point parses its own options from
 * argv as main received it less the command word (argv[0] the program)
 * and returns the exit status.
 */
#ifndef QN_TRAIN_LINEAR_H
#define QN_TRAIN_LINEAR_H

/* Whether argv asks for --arch linear (--arch linear or --arch=linear). */
int linear_requested(int argc, char **argv);
/* Whether DIR/config.json describes a linear classifier. */
int linear_is_model(const char *dir);
/* quern-train fit --arch linear ... */
int linear_fit_main(int argc, char **argv);
/* quern-train classify MODEL [file ...] for a linear MODEL. */
int linear_classify_main(int argc, char **argv);

#endif
