/*
 * quern-audit - scans of data and model outputs for PII, secrets and policy
 * rules with gates and reports (scan), lineage checks over manifests
 * (lineage), datasheets (datasheet), evaluations (eval), memorization and
 * canary tests (memorization, canary), generation probes (probe), model
 * cards (model-card) and the EU training-content summary (eu-summary).
 */
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "cli.h"

static const char usage_text[] =
    "usage: quern-audit <command> [options] [args ...]\n"
    "\n"
    "Audits of data and models: PII, secrets, policy rules, lineage.\n"
    "\n"
    "Commands:\n"
    "  scan [options] [file ...]      PII, secret and policy-rule findings in document\n"
    "                                 or generation JSON Lines or plain text, with\n"
    "                                 policy gates and JUnit, SARIF and HTML reports\n"
    "  lineage MANIFEST ...           verify a chain of run manifests against the\n"
    "                                 files on disk; --source PATH: what derives\n"
    "                                 from a source\n"
    "  datasheet [options] FILE ...   a Markdown datasheet from manifests, clean\n"
    "                                 statistics and scan summaries\n"
    "\n"
    "  eval MODEL --tasks FILE ...    lm-evaluation-harness-style evaluations\n"
    "  memorization MODEL --data SHARDS\n"
    "                                 discoverable memorization of training documents\n"
    "  canary insert|exposure ...     seeded canaries and their exposure\n"
    "  probe MODEL --prompts FILE     generations scanned for PII, secrets and rules,\n"
    "                                 gated; PII regurgitated from training data\n"
    "  model-card [options] FILE ...  a model card (Markdown and JSON)\n"
    "  eu-summary [options] FILE ...  the EU AI Act training-content summary\n"
    "\n"
    "'quern-audit <command> --help' shows a command's options.\n"
    "\n"
    "Exit status: 0 clean; 1 a policy gate failed, a lineage check failed, or\n"
    "a failure; 2 usage error.\n";

int main(int argc, char **argv)
{
	qn_cli_init("quern-audit");
	if (argc < 2)
		return qn_usage_error("missing command");
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		fputs(usage_text, stdout);
		return qn_close_stdout(0);
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
		qn_print_version();
		return qn_close_stdout(0);
	}
	if (cmd[0] == '-')
		return qn_usage_error("unknown option '%s' (a command comes first)", cmd);
	argv[1] = argv[0];
	if (!strcmp(cmd, "scan"))
		return scan_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "lineage"))
		return lineage_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "datasheet"))
		return datasheet_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "eval"))
		return eval_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "memorization"))
		return memorization_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "canary"))
		return canary_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "probe"))
		return probe_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "model-card"))
		return modelcard_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "eu-summary"))
		return eusummary_main(argc - 1, argv + 1);
	return qn_usage_error("unknown command '%s'", cmd);
}
