import { MemoryLedger } from '../../../remediations/ledger/memory-ledger.js';
import { ledgerStoreContract } from '../../contract/ledger-store.js';

ledgerStoreContract(
  'memory',
  () => {
    const store = new MemoryLedger();
    return Promise.resolve({ writer: store, store, readBack: () => Promise.resolve([...store.entries]), close: () => Promise.resolve() });
  },
  { queries: true },
);
