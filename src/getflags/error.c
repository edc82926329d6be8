/* placeholder until implemented */
typedef int gf_placeholder_error;
