/*
 * sweep - quern-train sweep: hyperparameter search over quern-train fit
 * runs (random search and successive halving), trials in parallel, a
 * leaderboard and the best trial's model. Parses its own options from argv
 * as main received it less the command word (argv[0] the program) and
 * returns the exit status.
 */
#ifndef QN_TRAIN_SWEEP_H
#define QN_TRAIN_SWEEP_H

int sweep_main(int argc, char **argv);

#endif
