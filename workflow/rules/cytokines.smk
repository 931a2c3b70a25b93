# Cytokines: bead arrays read on the flow cytometer (one job per well, then one per batch) and ELISA
# plates (one job per plate); both collected into results/cytokines/.


rule beadplex_well:
    input:
        fcs=raw_file,
        checksum=checksum_file,
    output:
        status="results/beadplex/{sample}/status.json",
        beads="results/beadplex/{sample}/beads.tsv",
        figure=report(
            "results/beadplex/{sample}/populations.png",
            caption="../report/cytokines_beads.rst",
            category="Cytokines",
            subcategory="Bead populations",
            labels={"well": "{sample}", "figure": "bead populations"},
        ),
    log:
        "logs/beadplex/{sample}.log",
    wildcard_constraints:
        sample=one_of(BEADPLEX_WELLS),
    threads: 1
    resources:
        mem_mb=lambda wc, input: 500 + 20 * input_mb(input),
        runtime=10,
    params:
        zincassay=ZINCASSAY,
        settings=settings("beadplex"),
        sheet=SHEET_FILE,
        row=sheet_row,
        outputs=lambda wc, output: flags(output),
    shell:
        "{params.zincassay} beadplex-well {input.fcs:q} --checksum {input.checksum:q} --sheet {params.sheet:q}"
        " --sample-id {wildcards.sample}"
        " --settings {params.settings:q} {params.outputs} 2> {log:q}"


rule beadplex_batch:
    input:
        unpack(beadplex_batch_inputs),
    output:
        concentrations="results/beadplex/batches/{batch}/concentrations.tsv",
        standards="results/beadplex/batches/{batch}/standards.tsv",
        standard_levels="results/beadplex/batches/{batch}/standard_levels.tsv",
        samples="results/beadplex/batches/{batch}/samples.tsv",
        curves=report(
            directory("results/beadplex/batches/{batch}/curves"),
            patterns=["{analyte}.png"],
            caption="../report/cytokines_curves.rst",
            category="Cytokines",
            subcategory="Standard curves",
            labels={"batch": "{batch}", "analyte": "{analyte}"},
        ),
    log:
        "logs/beadplex/batches/{batch}.log",
    wildcard_constraints:
        batch=one_of(BEADPLEX_BATCHES),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=20,
    params:
        zincassay=ZINCASSAY,
        settings=settings("beadplex"),
        sheet=SHEET_FILE,
        rows=batch_rows(BEADPLEX, "batch"),
        outputs=lambda wc, output: flags(output),
    shell:
        "{params.zincassay} beadplex-batch --sheet {params.sheet:q} --batch {wildcards.batch}"
        " --settings {params.settings:q} --beads {input.beads:q} --statuses {input.statuses:q}"
        " {params.outputs} 2> {log:q}"


rule elisa_plate:
    input:
        unpack(elisa_plate_inputs),
    output:
        status="results/elisa/{plate}/status.json",
        samples="results/elisa/{plate}/samples.tsv",
        concentrations="results/elisa/{plate}/concentrations.tsv",
        standards="results/elisa/{plate}/standards.tsv",
        standard_levels="results/elisa/{plate}/standard_levels.tsv",
        wells="results/elisa/{plate}/wells.tsv",
        figure=report(
            "results/elisa/{plate}/plate.png",
            caption="../report/cytokines_plate.rst",
            category="Cytokines",
            subcategory="ELISA plates",
            labels={"plate": "{plate}", "figure": "plate and standard curve"},
        ),
    log:
        "logs/elisa/{plate}.log",
    wildcard_constraints:
        plate=one_of(ELISA_PLATES),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        zincassay=ZINCASSAY,
        settings=settings("elisa"),
        sheet=SHEET_FILE,
        rows=batch_rows(ELISA, "plate"),
        outputs=lambda wc, output: flags(output),
    shell:
        "{params.zincassay} elisa-plate {input.export:q} --layout {input.layout:q} --checksum {input.checksum:q}"
        " --sheet {params.sheet:q} --plate {wildcards.plate}"
        " --settings {params.settings:q} {params.outputs} 2> {log:q}"


rule beadplex_collect:
    input:
        beads=expand("results/beadplex/{sample}/beads.tsv", sample=BEADPLEX_WELLS),
        samples=expand(
            "results/beadplex/batches/{batch}/samples.tsv", batch=BEADPLEX_BATCHES
        ),
    output:
        beads="results/beadplex/beads.tsv",
        samples="results/beadplex/samples.tsv",
    log:
        "logs/beadplex/collect.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        zincassay=ZINCASSAY,
    shell:
        "{params.zincassay} collect --out {output.beads:q} {input.beads:q} 2> {log:q}"
        " && {params.zincassay} collect --out {output.samples:q} {input.samples:q} 2>> {log:q}"


rule elisa_collect:
    input:
        wells=expand("results/elisa/{plate}/wells.tsv", plate=ELISA_PLATES),
        samples=expand("results/elisa/{plate}/samples.tsv", plate=ELISA_PLATES),
    output:
        wells="results/elisa/wells.tsv",
        samples="results/elisa/samples.tsv",
    log:
        "logs/elisa/collect.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        zincassay=ZINCASSAY,
        outputs=lambda wc, output: outs(output),
    shell:
        "{params.zincassay} collect {params.outputs} {input:q} 2> {log:q}"


rule cytokines_collect:
    input:
        concentrations=cytokine_run_tables("concentrations"),
        standards=cytokine_run_tables("standards"),
        standard_levels=cytokine_run_tables("standard_levels"),
    output:
        concentrations="results/cytokines/concentrations.tsv",
        standards="results/cytokines/standards.tsv",
        standard_levels="results/cytokines/standard_levels.tsv",
    log:
        "logs/cytokines/collect.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        zincassay=ZINCASSAY,
        outputs=lambda wc, output: outs(output),
    shell:
        "{params.zincassay} collect {params.outputs} {input:q} 2> {log:q}"
