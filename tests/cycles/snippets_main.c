/* snippets_main.c - runs the snippets of snippets.S, each one segment of the plugin's counts. */
void snippet_loads(void);
void snippet_multiple(void);
void snippet_branches(void);
void snippet_v7(void);

int main(void)
{
    snippet_loads();
    snippet_multiple();
    snippet_branches();
#if __ARM_ARCH >= 7
    snippet_v7();
#endif
    return 0;
}
