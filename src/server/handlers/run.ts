import { AdiError } from '../../errors.js';
import type { Handler } from '../context.js';

export const handleRun: Handler<'Run'> = () => {
  throw new AdiError('NOT_IMPLEMENTED', 'Run is not implemented yet.');
};
