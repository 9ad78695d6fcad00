"""A report format from another distribution (entry-point group `mutguard.formats`): one line
per cluster, its name and MUT from the internet."""


def render(report, color=False):
    return "".join(f"{cluster.name} {cluster.mut}\n" for cluster in report.clusters)
