rule render_table:
    """Markdown, HTML and LaTeX renderings of a CSV table, rounded for reading."""
    input:
        f"{RESULTS}/tables/{{name}}.csv",
    output:
        md=f"{RESULTS}/tables/{{name}}.md",
        html=f"{RESULTS}/tables/{{name}}.html",
        tex=f"{RESULTS}/tables/{{name}}.tex",
    log:
        f"{RESULTS}/logs/render_table_{{name}}.log",
    conda:
        "../../envs/hairtrial.yaml"
    script:
        "../scripts/render_table.py"
