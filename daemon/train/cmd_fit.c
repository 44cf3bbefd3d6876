/* recd-train fit and eval: train models from a dataset, evaluate a bundle. */
#include <stdio.h>

#include "cli.h"

int cmd_fit(int argc, char **argv)
{
    fprintf(stderr, "recd-train fit: not implemented yet\n");
    return 1;
}

int cmd_eval(int argc, char **argv)
{
    fprintf(stderr, "recd-train eval: not implemented yet\n");
    return 1;
}
