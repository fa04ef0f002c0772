// Run as another user (setpriv) by test/preflight/backup-room.test.ts: prints
// whether that user may write backups into argv[2].
import { backupDirWritable } from '../../services/preflight/backup-room.js';

process.stdout.write(JSON.stringify(await backupDirWritable(process.argv[2]!)) + '\n');
