"""Is this host's django-q cluster running? The worker container's health check.

A qcluster's guard loop saves its status (django_q.status.Stat) to the broker's cache every
half second, for 3 seconds. With the ORM broker that cache is CACHE_URL (dbcache:// in
production, shared by every container), and each status names the host it runs on: a container's
hostname is its own, so this checks the cluster in *this* container is guarding its workers
and is idle or working, not merely that some process exists. Exit 0 when it is, 1 otherwise.
"""

import socket

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Exit 0 if this host's django-q cluster reports Idle or Working, else 1 (a health check)."
    requires_system_checks = []  # runs every 30 s: the cluster ran the checks when it started

    def handle(self, *args, **options):
        from django_q.conf import Conf
        from django_q.status import Stat

        alive_states = {str(Conf.IDLE), str(Conf.WORKING)}  # translated lazily: compare as text
        host = socket.gethostname()
        mine = [stat for stat in Stat.get_all() if stat.host == host]
        if not mine:
            raise CommandError(
                f"no cluster status from {host} in the cache (qcluster down, or CACHE_URL not shared)"
            )
        alive = [stat for stat in mine if str(stat.status) in alive_states]
        if not alive:
            raise CommandError(f"cluster on {host}: {', '.join(sorted({str(s.status) for s in mine}))}")
        self.stdout.write(f"cluster on {host}: {alive[0].status}, {len(alive[0].workers)} workers")
