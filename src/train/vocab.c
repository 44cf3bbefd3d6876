/* Vocabularies shared by the synthetic generators and the MovieLens
 * importer. */
#include "internal.h"

const char *const tf_genres[TF_NGENRES] = {
    "Action",      "Adventure", "Animation", "Children",  "Comedy", "Crime",
    "Documentary", "Drama",     "Fantasy",   "Film-Noir", "Horror", "Musical",
    "Mystery",     "Romance",   "Sci-Fi",    "Thriller",  "War",    "Western"};

/* ml-1m README order: code 0 .. 20 */
const char *const tf_occupations[TF_NOCCUPATIONS] = {"other",
                                                     "academic/educator",
                                                     "artist",
                                                     "clerical/admin",
                                                     "college/grad student",
                                                     "customer service",
                                                     "doctor/health care",
                                                     "executive/managerial",
                                                     "farmer",
                                                     "homemaker",
                                                     "K-12 student",
                                                     "lawyer",
                                                     "programmer",
                                                     "retired",
                                                     "sales/marketing",
                                                     "scientist",
                                                     "self-employed",
                                                     "technician/engineer",
                                                     "tradesman/craftsman",
                                                     "unemployed",
                                                     "writer"};
