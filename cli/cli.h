// cli: `temper <command>`. Each command lives in cli/cmd_<name>.c and is listed in
// the table in cli/main.c. Commands parse their flags, call the library, print
// errors as one line, and return the process exit status.
#pragma once

int cmd_init(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_grade(int argc, char **argv);
int cmd_tool(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_sft(int argc, char **argv);
int cmd_dpo(int argc, char **argv);
int cmd_kto(int argc, char **argv);
int cmd_reward_model(int argc, char **argv);
int cmd_grpo(int argc, char **argv);
int cmd_rehearsal(int argc, char **argv);
int cmd_ppo(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_critical_tokens(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_pairs(int argc, char **argv);
int cmd_filter(int argc, char **argv);
int cmd_step_pairs(int argc, char **argv);
int cmd_online_dpo(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_perturb(int argc, char **argv);
int cmd_task(int argc, char **argv);
int cmd_task_synth(int argc, char **argv);
int cmd_task_visual(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);

// Prints "temper <cmd>: message" to stderr and returns 1 (or 2 for usage errors).
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// The last line cli_fail printed ("temper CMD: message"): temper demo reports why a stage failed.
extern char cli_last_error[512];
