# The workflow lives in workflow/Snakefile (Snakemake Workflow Catalog standardized layout).
# Snakemake finds ./Snakefile first. An included file cannot set the default target
# (Workflow.include restores it), so the one rule here forwards to workflow/Snakefile's "all".


include: "workflow/Snakefile"


rule default:
    default_target: True
    input:
        rules.all.input,
