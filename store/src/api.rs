//! Queries of the control API: keys, zone listing, record-set listing. (Filled by the control-API work.)
