/* cmd.h - the subcommands of bin/payments; each returns the process exit code. */
#ifndef PAYMENTS_CMD_H
#define PAYMENTS_CMD_H

int cmd_serve(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_relay(int argc, char **argv);
int cmd_processor(int argc, char **argv);

#endif
