/* recd-train synth and import: build a dataset (recd-dataset/1). */
#include <stdio.h>

#include "cli.h"

int cmd_synth(int argc, char **argv)
{
    fprintf(stderr, "recd-train synth: not implemented yet\n");
    return 1;
}

int cmd_import(int argc, char **argv)
{
    fprintf(stderr, "recd-train import: not implemented yet\n");
    return 1;
}
