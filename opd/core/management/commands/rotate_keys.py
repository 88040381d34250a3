"""Re-encrypt everything with the current key (the first of OPD_ENCRYPTION_KEYS), online and in batches.

Rotation: put a new key first in OPD_ENCRYPTION_KEYS, keep the old one after it, restart, run this; when
it reports nothing left under an old key, drop the old key. With --blind-index it also recomputes the
blind indexes with OPD_BLIND_INDEX_KEY (set the old one as OPD_BLIND_INDEX_KEY_PREVIOUS meanwhile so
search keeps finding rows not yet recomputed; unset it afterwards).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from opd.core import crypto
from opd.core.services.encryption import BATCH_SIZE, blind_index_recompute, encryption_rotate


class Command(BaseCommand):
    help = "Re-encrypt encrypted columns, attachment files and archived copies with the current key."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
        parser.add_argument(
            "--blind-index",
            action="store_true",
            help="Also recompute every blind index with OPD_BLIND_INDEX_KEY.",
        )

    def handle(self, *args, batch_size: int, blind_index: bool, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        ring = crypto.keyring()
        self.stdout.write(
            f"Current key: {ring.current_id}; other keys: {', '.join(sorted(set(ring.ciphers) - {ring.current_id})) or 'none'}."
        )
        report = encryption_rotate(batch_size=batch_size)
        for name, count in sorted(report.values.items()):
            self.stdout.write(f"  {name}: {count} re-encrypted")
        self.stdout.write(f"  attachment files: {report.files} re-encrypted")
        for name, count in sorted(report.copies.items()):
            self.stdout.write(f"  {name}: {count} re-encrypted")
        for name, count in sorted(report.not_encrypted.items()):
            self.stderr.write(
                f"  {name}: {count} values are not encrypted tokens (written past the application?)"
            )
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {report.total} values and files."))
        if blind_index:
            counts = blind_index_recompute(batch_size=batch_size)
            for name, count in sorted(counts.items()):
                self.stdout.write(f"  {name}: {count} recomputed")
            self.stdout.write(self.style.SUCCESS(f"Recomputed {sum(counts.values())} blind indexes."))
